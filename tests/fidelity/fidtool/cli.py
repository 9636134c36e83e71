"""The command line of fidelity.py."""

import argparse
import os

from . import grammar
from .campaign import cmd_run, cmd_summary
from .reduce import cmd_check, cmd_selftest_reduce


def main(doc):
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="generate, build and compare programs")
    run.add_argument("--build", required=True, help="the MMSB build tree")
    run.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    run.add_argument("--count", type=int, default=200, help="programs (default 200)")
    run.add_argument("--functions", type=int, default=24,
                     help="generated functions per program (default 24)")
    run.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    run.add_argument("--keep", help="where failing programs are kept (default: a temp dir)")
    run.add_argument("--reduce", action="store_true", help="reduce failing programs with cvise")
    run.add_argument("--progress", action="store_true", help="a line per finished program")
    run.add_argument("--attribute", action="store_true",
                     help="name the issue-13 defect classes behind the failures")
    run.add_argument("--figures", action="store_true", help="print FIGURE lines (bench/run)")
    run.add_argument("--oracle", choices=["self", "plain"], default="self",
                     help="ground truth: the instrumented run's own live bytes at each commit "
                          "(one compile, default), or the plain build's")
    run.add_argument("--plain-every", type=int, default=4,
                     help="with --oracle self, build every K-th program plain too and check that "
                          "it computes the same bytes (default 4)")
    run.add_argument("--productions",
                     help="comma-separated productions to draw from (default: all of them)")
    run.add_argument("--results", help="append a JSON line per program to this file, and skip "
                                        "the seeds it already has (a resumable campaign)")
    run.add_argument("--pch-every", type=int, default=8,
                     help="compile programs with a precompiled prelude (the standard headers "
                          "and fidelity_support.h), all but every K-th one (default 8; 0: never)")
    red = sub.add_parser("selftest-reduce",
                         help="plant a lost store in a generated program and check that cvise "
                              "reduces it to a small reproducer")
    red.add_argument("--build", required=True)
    red.add_argument("--seed", type=int, default=7)
    red.add_argument("--functions", type=int, default=6)
    summ = sub.add_parser("summary", help="summarise a --results file")
    summ.add_argument("--results", required=True)
    summ.add_argument("--figures", action="store_true")
    chk = sub.add_parser("check", help="cvise interestingness test")
    chk.add_argument("--build", required=True)
    chk.add_argument("--kind", required=True)
    chk.add_argument("--system-headers", action="store_true")
    chk.add_argument("--pch", action="store_true", help="compile with the precompiled prelude")
    chk.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.cmd == "run":
        if args.productions:
            unknown = set(args.productions.split(",")) - set(grammar.PRODUCTIONS)
            if unknown:
                ap.error(f"unknown productions: {', '.join(sorted(unknown))}")
            grammar.SELECTED = args.productions.split(",")
        return cmd_run(args)
    if args.cmd == "summary":
        return cmd_summary(args)
    if args.cmd == "selftest-reduce":
        return cmd_selftest_reduce(args)
    return cmd_check(args)
