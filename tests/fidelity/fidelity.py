#!/usr/bin/env python3
"""Differential program generator for the MMSB rewriter (in the spirit of Csmith and YARPGen).

Each generated program writes [[mmsb::page]] state through constructs drawn from a grammar
(counted and range loops with shadowing and reused induction variables, nested arrays and
structs, bitfields, unions, references and pointers kept in locals and globals, lambdas and
std::function, member calls whose arguments commit, transactions that throw, standard
algorithms, templates shared with non-page types, mutable members, commits inside loops, in
callbacks, through function pointers and on other threads at quiescent points, inline asm,
several translation units, MMSB headers seen as system headers; escapes: pointers in arrays and
pointers to pointers, lambdas stored in a global std::function and called later, `this` kept by
a member function of a page's member type, references returned by functions; library writes:
memset/memmove/strcpy/snprintf/sscanf, std::ranges, std::tie, std::span, std::atomic_ref;
whole-page copies, placement new, operator overloads, std::atomic members, signed bit-fields;
a third-party (system-header) type whose members keep `this`; std::optional, variant, bitset
and std::array members; inheritance, goto and switch fall-through, destructor stores,
thread_local and global std::span pointers into pages, lambdas run after a commit, const
members writing mutable ones; static pointers and references into pages; conditional and
comma destinations, standard holders of a page's addresses, C variadic arguments, macros;
docs/PluginGuide.md has the table). It is built twice:

  plain       clang++-19 without the plugin, FIDELITY_PLAIN defined: every commit point prints
              the bytes of every page (the ground truth);
  instrumented clang++-19 -fplugin=mmsb-plugin.so at -O2, linked with libmmsb, run WITHOUT
              verify mode, writing a log.

The instrumented build must compile whenever the plain one does (a link failure that names a
page symbol, `_mmsb_page.`, is the plugin refusing a mix loudly and counts as a pass), both
must exit 0, and the log, replayed epoch by epoch (fidelity_replay), must equal the plain
build's bytes at every commit.

  fidelity.py run --build BUILD_DIR [--seed S] [--count N] [--functions F] [--jobs J]
                  [--reduce] [--keep DIR] [--figures] [--productions NAME,...]
  fidelity.py check --build BUILD_DIR --kind KIND FILE...   (cvise's interestingness test)

A failure is kept under --keep (default: a temporary directory) with its sources, both
builds' output and a check.sh; with --reduce, cvise (Debian's cvise package) shrinks it.
Exit status: 0 when every program passed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fidtool.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(__doc__))
