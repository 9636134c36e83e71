#!/usr/bin/env python3
"""Differential program generator for the MMSB rewriter (in the spirit of Csmith and YARPGen).

Each generated program writes [[mmsb::page]] state through constructs drawn from a grammar
(counted and range loops with shadowing and reused induction variables, nested arrays and
structs, bitfields, unions, references and pointers kept in locals and globals, lambdas and
std::function, member calls whose arguments commit, transactions that throw, standard
algorithms, templates shared with non-page types, mutable members, commits inside loops, in
callbacks and on other threads at quiescent points, inline asm, several translation units, MMSB
headers seen as system headers). It is built twice:

  plain       clang++-19 without the plugin, FIDELITY_PLAIN defined: every commit point prints
              the bytes of every page (the ground truth);
  instrumented clang++-19 -fplugin=mmsb-plugin.so at -O2, linked with libmmsb, run WITHOUT
              verify mode, writing a log.

The instrumented build must compile whenever the plain one does (a link failure that names a
page symbol, `_mmsb_page.`, is the plugin refusing a mix loudly and counts as a pass), both
must exit 0, and the log, replayed epoch by epoch (fidelity_replay), must equal the plain
build's bytes at every commit.

  fidelity.py run --build BUILD_DIR [--seed S] [--count N] [--functions F] [--jobs J]
                  [--reduce] [--keep DIR] [--figures]
  fidelity.py check --build BUILD_DIR --kind KIND FILE...   (cvise's interestingness test)

A failure is kept under --keep (default: a temporary directory) with its sources, both
builds' output and a check.sh; with --reduce, cvise (Debian's cvise package) shrinks it.
Exit status: 0 when every program passed.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
CLANG = shutil.which("clang++-19") or "/usr/lib/llvm-19/bin/clang++"

# ---- the grammar -------------------------------------------------------------------------
#
# Every production returns the body of one generated function (a C++ statement list). `r` is
# the program's random.Random; `ctx` collects what the program needs beyond one function (a
# second translation unit, helper declarations). Indices always stay in bounds: the grammar
# generates defined behaviour only, so plain and instrumented builds must agree.

PRELUDE = r"""
#include <array>
#include SUPPORT_INCLUDE

struct Cell { int a; double b; };
struct Bits { unsigned n : 4; unsigned mode : 4; };
union Num { int i; float f; };
struct [[mmsb::page]] S {
  int a[64];
  double m[8][8];
  long long b[32];
  Cell cells[16];
  unsigned lo : 3;
  unsigned mid : 7;
  unsigned hi : 9;
  int level;
  Bits bits;
  Num num;
  std::array<int, 16> arr;
  fid::Acc acc;
  int grid[8][8];
  mutable int cache;
};
struct PlainLevel { int level : 5; int pad; };

[[mmsb::page]] S g0;
[[mmsb::page]] S g1;
[[mmsb::page]] float g_series[64];
// Pages of the threaded productions: one per worker thread, and one shared under a mutex.
struct [[mmsb::page]] T { int v[32]; long long n; };
[[mmsb::page]] T gt0;
[[mmsb::page]] T gt1;
[[mmsb::page]] T gm;
int* g_keep = nullptr;
int g_sink = 0;

template <class T>
void SetLevel(T& t, int v) { t.level = v; }
template <class T>
void BumpAll(T* p, int n, int v) { for (int i = 0; i < n; ++i) p[i] += v; }

[[mmsb::transaction]] int Produce(int v) {
  fid::Tx tx;
  g1.level += v;
  g1.a[v & 63] = v;
  return v;
}
[[mmsb::transaction]] void TxOwn0(int v) {
  fid::Tx tx;
  gt0.n += v;
  for (int i = 0; i < 8; ++i) gt0.v[(v + i) & 31] ^= v * (i + 1);
}
[[mmsb::transaction]] void TxOwn1(int v) {
  fid::Tx tx;
  gt1.n -= v;
  gt1.v[v & 31] += v;
}
constexpr void FillRow(S& s, int r, int v) { for (int c = 0; c < 8; ++c) s.grid[r][c] = v + c; }
constexpr int RowSum(int v) {
  S s{};
  FillRow(s, 1, v);
  int t = 0;
  for (int c = 0; c < 8; ++c) t += s.grid[1][c];
  return t;
}
static_assert(RowSum(1) == 36);
[[mmsb::transaction]] void Throwing(int v) {
  fid::Tx tx;
  g0.level = v;
  g1.b[v & 31] = v;
  if (v >= 0) throw v;
}
"""


def _v(r):
    return r.randint(1, 1000)


def p_counted_loop(r, ctx):
    lo = r.randint(0, 20)
    hi = r.randint(lo + 1, 64)
    cmp, inc = r.choice([("<", "++i"), ("<", "i++"), ("<", "i += 1")])
    target = r.choice(["g0.a[i]", "g1.a[i]"])
    op = r.choice(["=", "+=", "^="])
    return f"for (int i = {lo}; i {cmp} {hi}; {inc}) {target} {op} (i * {_v(r)}) ^ {_v(r)};"


def p_struct_loop(r, ctx):
    n = r.randint(1, 16)
    return (f"for (int i = 0; i < {n}; ++i) {{ g0.cells[i].a = i + {_v(r)}; "
            f"g0.cells[i].b += i * 0.5; }}")


def p_nested_loop(r, ctx):
    return (f"for (int r = 0; r < 8; ++r) {{ g0.level = r; "
            f"for (int c = 0; c < 8; ++c) g0.grid[r][c] = r * c + {_v(r)}; }}")


def p_identity(r, ctx):
    return f"for (int i = 0; i < 8; ++i) g0.m[i][i] = {_v(r)}.0;"


def p_reused_induction(r, ctx):
    start = r.randint(0, 7)
    return (f"int i = {start}; g_sink += i; "
            f"for (i = 0; i < 8; ++i) g0.m[i][i] = {_v(r)}.5; "
            f"for (i = 0; i < 16; ++i) g1.a[i] = i + {_v(r)};")


def p_shadowed(r, ctx):
    n = r.randint(4, 32)
    return (f"long long* row = g1.b; g_sink += (int)row[0]; "
            f"for (int i = 0; i < {n}; ++i) {{ long long* row = g0.b; row[i] = i * {_v(r)}; }}")


def p_callback_commit(r, ctx):
    n = r.randint(4, 64)
    k = r.randint(0, n - 2)
    return (f"std::function<void()> cb = [] {{ fid::CommitPoint(); }}; "
            f"for (int i = 0; i < {n}; ++i) {{ g0.a[i] = i + {_v(r)}; if (i == {k}) cb(); }}")


def p_loop_commit(r, ctx):
    n = r.randint(4, 64)
    k = r.randint(0, n - 2)
    return f"for (int i = 0; i < {n}; ++i) {{ g1.a[i] = i * {_v(r)}; if (i == {k}) fid::CommitPoint(); }}"


def p_range_for_commit(r, ctx):
    return (f"int k = 0; for (int& x : g0.a) {{ x = {_v(r)} + k; if (++k == {r.randint(1, 60)}) "
            f"fid::CommitPoint(); }}")


def p_thread_commit(r, ctx):
    n = r.randint(2, 6)
    return (f"std::atomic<int> req{{0}}; "
            f"std::thread t([&] {{ for (int k = 0; k < {n}; ++k) {{ while (req.load() != 1) {{}} "
            f"fid::CommitPoint(); req.store(0); }} }}); "
            f"for (int i = 0; i < {n}; ++i) {{ g0.b[i] = i + {_v(r)}; req.store(1); "
            f"while (req.load() != 0) {{}} }} t.join();")


def p_member_call_tx(r, ctx):
    return r.choice([f"g0.acc.Add(Produce({_v(r)}));", f"g0.arr.fill(Produce({_v(r)}));",
                     f"g1.acc.Add({_v(r)}); g1.arr.fill({_v(r)});"])


def p_produce_arg(r, ctx):
    # A transaction (it commits) evaluated as an operand of a store, a call or a library call:
    # whatever marks the destination must come after it (issue 13, class 3).
    lo = r.randint(0, 30)
    hi = r.randint(lo + 1, 64)
    return r.choice([
        f"g0.a[Produce({_v(r)}) & 63] = Produce({_v(r)});",
        f"g1.level = Produce({_v(r)}) + Produce({_v(r)});",
        f"g0.arr[Produce({_v(r)}) & 15] += {_v(r)};",
        f"std::fill(g0.a + {lo}, g0.a + {hi}, Produce({_v(r)}));",
        f"std::swap(g0.a[{lo}], g1.a[Produce({_v(r)}) & 63]);",
        f"SetLevel(g1, Produce({_v(r)}));",
        f"for (int i = {lo}; i < {hi}; ++i) g0.a[i] = Produce(i + {_v(r)});",
        f"g0.cells[Produce({_v(r)}) & 15].b = Produce({_v(r)}) * 0.5;",
        f"g1.acc.Add(Produce({_v(r)}) + Produce({_v(r)}));",
        f"__atomic_fetch_add(&g0.b[{lo & 31}], Produce({_v(r)}), __ATOMIC_RELAXED);",
        f"g1.arr[Produce({_v(r)}) & 15] ^= {_v(r)}; g0.arr[{lo & 15}] = Produce({_v(r)});",
    ])


def p_constexpr(r, ctx):
    # A constexpr function that writes a page type, run at compile time and on a page.
    return (f"constexpr int k = RowSum({_v(r)}); FillRow(g0, {r.randint(0, 7)}, k); "
            f"static_assert(RowSum(2) == 44); g_sink += RowSum({_v(r)});")


def p_threads_own_tx(r, ctx):
    # Two threads, each running its own [[mmsb::transaction]]s on its own page (issue 14).
    n = r.randint(1, 12)
    return (f"std::thread t0([] {{ fid::Worker w; for (int k = 0; k < {n}; ++k) TxOwn0(k + {_v(r)}); }}); "
            f"std::thread t1([] {{ fid::Worker w; for (int k = 0; k < {r.randint(1, 12)}; ++k) "
            f"TxOwn1(k * {_v(r)}); }}); "
            f"for (int k = 0; k < {n}; ++k) g0.a[k & 63] += k; t0.join(); t1.join();")


def p_mutex_shared(r, ctx):
    # Threads writing a shared page under a std::mutex (commutative updates: the final state
    # does not depend on the interleaving), one of them in transactions.
    n = r.randint(1, 16)
    v = _v(r)
    return (f"std::mutex mu; "
            f"auto work = [&](int id) {{ fid::Worker w; for (int k = 0; k < {n}; ++k) {{ "
            f"std::lock_guard<std::mutex> lock(mu); gm.v[(k * 3 + id) & 31] += k + id + {v}; "
            f"gm.n += 1; if (id == 1) TxOwn1(k); }} }}; "
            f"std::thread a(work, 0); std::thread b(work, 1); work(2); a.join(); b.join();")


def p_concurrent_commit(r, ctx):
    # Commits on the main thread while a worker writes pages (no quiescence), then a quiescent
    # commit after the join: nothing the worker wrote may be lost.
    n = r.randint(8, 64)
    return (f"std::atomic<int> done{{0}}; "
            f"std::thread t([&] {{ fid::Worker w; for (int i = 0; i < {n}; ++i) {{ "
            f"gt0.v[i & 31] += i + {_v(r)}; gt0.n ^= i; }} done.store(1); }}); "
            f"while (done.load() == 0) fid::ConcurrentCommit(); t.join();")


def p_asm_store(r, ctx):
    k = r.randint(0, 63)
    return r.choice([
        f'asm volatile("movl %1, %0" : "=m"(g0.a[{k}]) : "r"({_v(r)}));',
        f'asm volatile("addl %1, %0" : "+m"(g1.a[{k}]) : "r"({_v(r)}));',
    ])


def p_extern_decl(r, ctx):
    # The second TU declares the page variable with the attribute (tracked) or without it
    # (the plugin build must then refuse to link).
    ctx.setdefault("tu2", r.choice(["[[mmsb::page]] ", ""]))
    return f"WriteSeries({r.randint(0, 63)}, {_v(r)}.25f);"


def p_binding_bitfield(r, ctx):
    return f"auto& [n, mode] = g0.bits; mode = {r.randint(0, 15)}; n = {r.randint(0, 15)};"


def p_template_bitfield(r, ctx):
    return (f"SetLevel(g0, {_v(r)}); PlainLevel pl{{}}; SetLevel(pl, {r.randint(0, 15)}); "
            f"g_sink += pl.level;")


def p_template_loop(r, ctx):
    return f"BumpAll(g1.a, {r.randint(1, 64)}, {_v(r)}); int local[4] = {{}}; BumpAll(local, 4, 1); g_sink += local[0];"


def p_bitfields(r, ctx):
    return f"g0.lo = {r.randint(0, 7)}; g0.hi += {r.randint(1, 9)}; ++g0.mid; g1.hi = g0.lo;"


def p_range_for(r, ctx):
    return r.choice([f"for (auto& x : g0.a) x += {_v(r)};",
                     f"for (auto& row : g1.grid) for (auto& c : row) c += {_v(r)};",
                     f"for (Cell& c : g1.cells) c.b = {_v(r)}.0;"])


def p_algorithms(r, ctx):
    lo = r.randint(0, 30)
    hi = r.randint(lo + 1, 64)
    return r.choice([
        f"std::fill(g0.a + {lo}, g0.a + {hi}, {_v(r)});",
        f"std::sort(g0.a + {lo}, g0.a + {hi});",
        f"std::reverse(g1.a + {lo}, g1.a + {hi});",
        f"std::iota(g0.a + {lo}, g0.a + {hi}, {_v(r)});",
        f"int tmp[8] = {{{_v(r)}, {_v(r)}, 3, 4, 5, 6, 7, 8}}; std::copy(tmp, tmp + 8, g1.a + {r.randint(0, 56)});",
        f"std::transform(g0.a, g0.a + {hi}, g0.a, [](int x) {{ return x * 3 + 1; }});",
        f"std::swap(g0.a[{lo}], g1.a[{hi - 1}]);",
        f"int n = 0; std::generate(g0.a + {lo}, g0.a + {hi}, [&] {{ if (++n == 2) fid::CommitPoint(); return n + {_v(r)}; }});",
        f"std::for_each(g1.a, g1.a + {hi}, [](int& x) {{ x ^= {_v(r)}; }});",
        f"int tmp[4] = {{{_v(r)}, 2, 3, 4}}; std::memcpy(&g0.a[{r.randint(0, 60)}], tmp, sizeof tmp);",
    ])


def p_pointer_local(r, ctx):
    k = r.randint(0, 62)
    return f"int* p = &g0.a[{k}]; *p = {_v(r)}; p[1] += 2; long long* q = g1.b; q[{r.randint(0, 31)}] = {_v(r)};"


def p_pointer_global(r, ctx):
    return f"g_keep = &g1.a[{r.randint(0, 63)}]; *g_keep = {_v(r)};"


def p_reference_local(r, ctx):
    return f"int& ref = g0.level; ref = {_v(r)}; ref++; double& d = g1.m[{r.randint(0, 7)}][{r.randint(0, 7)}]; d *= 2.0;"


def p_lambda(r, ctx):
    return f"auto f = [&](int v) {{ g0.a[{r.randint(0, 63)}] = v; g1.level -= v; }}; f({_v(r)});"


def p_union(r, ctx):
    return f"g0.num.f = {_v(r)} * 0.5f; g0.num.i ^= 1;"


def p_mutable(r, ctx):
    return f"const S& cs = g1; cs.cache = {_v(r)};"


def p_tx_throw(r, ctx):
    return f"try {{ Throwing({r.randint(-1, 9)}); }} catch (int) {{ g_sink += 1; }}"


def p_compound(r, ctx):
    return (f"g0.b[{r.randint(0, 31)}] -= {_v(r)}; g0.cells[{r.randint(0, 15)}].b *= 2.0; "
            f"g1.level <<= 1; g_series[{r.randint(0, 63)}] += 1.5f;")


def p_commit(r, ctx):
    return f"g0.level = {_v(r)}; fid::CommitPoint(); g0.level += 1;"


PRODUCTIONS = {name[2:]: fn for name, fn in globals().items() if name.startswith("p_")}

# The defect classes of issue 13 that a failing production points at (rediscovered_classes).
DEFECT_CLASS = {
    "identity": 1, "reused_induction": 1, "shadowed": 1,
    "callback_commit": 2, "loop_commit": 2, "thread_commit": 2, "range_for_commit": 2,
    "member_call_tx": 3, "produce_arg": 3, "asm_store": 4, "extern_decl": 5, "binding_bitfield": 6,
    "template_bitfield": 8,
}

PAGE_VARIABLES = {"g0", "g1", "g_series", "gt0", "gt1", "gm"}
PAGES = ["g0", "g1", "g_series", "gt0", "gt1", "gm"]

# Productions whose threads commit in an order that is not deterministic: the log has epochs
# that no state of the plain build corresponds to, so the main thread's commits are compared
# as a subsequence of the log's epochs (see compare).
THREADED = {"threads_own_tx", "mutex_shared", "concurrent_commit"}

HEADERS = [
    ("algorithm", ["std::fill", "std::sort", "std::reverse", "std::copy", "std::transform",
                   "std::generate", "std::for_each"]),
    ("atomic", ["std::atomic"]), ("cstring", ["std::memcpy"]), ("functional", ["std::function"]),
    ("numeric", ["std::iota"]), ("thread", ["std::thread"]), ("utility", ["std::swap"]),
    ("mutex", ["std::mutex"]),
]

TU2 = r"""
// The second translation unit: declares the page variable (with or without [[mmsb::page]]).
ATTRIBUTEextern float g_series[64];
void WriteSeries(int k, float v) { g_series[k] = v; g_series[(k + 1) & 63] += v; }
"""


MAIN_START = ("int main(int argc, char** argv) {\n" +
              "".join(f"  fid::Track(\"{p}\", &{p}, sizeof {p});\n" for p in PAGES) +
              "  if (fid::Start(argc > 1 ? argv[1] : \"fidelity.log\") != 0) return 1;\n"
              "  fid::CommitPoint();\n")


def generate(seed, functions):
    """Returns (sources: {name: text}, productions used in order)."""
    r = random.Random(seed)
    ctx = {}
    system_headers = r.random() < 0.5
    used = []
    bodies = []
    names = sorted(PRODUCTIONS)
    for i in range(functions):
        name = r.choice(names)
        used.append(name)
        bodies.append(f"// {name}\nvoid f{i}() {{ {PRODUCTIONS[name](r, ctx)} }}\n")
    include = "<fidelity_support.h>" if system_headers else '"fidelity_support.h"'
    # Only the headers the chosen productions need: compile time is most of a program's cost.
    text = "".join(bodies)
    headers = [h for h, needles in HEADERS if any(n in text for n in needles)]
    main = [f"// Generated by tests/fidelity/fidelity.py, seed {seed}.\n"
            f"// MMSB headers as {'system' if system_headers else 'user'} headers.\n",
            "".join(f"#include <{h}>\n" for h in headers),
            PRELUDE.replace("SUPPORT_INCLUDE", include)]
    if "tu2" in ctx:
        main.append("void WriteSeries(int k, float v);\n")
    main.extend(bodies)
    main.append(MAIN_START)
    for i in range(functions):
        main.append(f"  f{i}(); fid::CommitPoint();\n")
    main.append("  return fid::Finish();\n}\n")
    sources = {"prog.cc": "".join(main)}
    if "tu2" in ctx:
        sources["tu2.cc"] = TU2.replace("ATTRIBUTE", ctx["tu2"])
    return sources, used, system_headers


# ---- building and comparing ----------------------------------------------------------------

# The precompiled prelude (--pch-every): every standard header a production may use and
# fidelity_support.h (with MMSB's headers), nothing of the generated code, no page type. Parsing
# these headers twice (the plugin's analysis and its compile of the rewritten source) was most of
# a program's cost. A program built with it includes the same headers again (#pragma once and
# include guards make that a no-op), so its source is the same as without it.
PCH_HEADER = "".join(f"#include <{h}>\n" for h in
                     ["algorithm", "array", "atomic", "cstring", "functional", "mutex", "numeric",
                      "thread", "utility"])


class Tools:
    def __init__(self, build, pch_every=0):
        self.build = os.path.abspath(build)
        self.plugin = self._find("plugin/mmsb-plugin.so", "lib/mmsb/mmsb-plugin.so")
        self.runtime = self._find("runtime/libmmsb.a")
        # A build of the code before issue 13's fixes (fidelity.rediscovered_classes) has no
        # separate core archive.
        core = os.path.join(self.build, "runtime/libmmsb_core.a")
        self.core = [core] if os.path.exists(core) else []
        self.replay = self._find("tests/fidelity/fidelity_replay")
        # The runtime headers of the source tree the build was configured from (a build of
        # other code, such as the code before issue 13's fixes, needs its own), else this one's.
        self.include = os.path.join(SOURCE_ROOT, "runtime", "include")
        cache = os.path.join(self.build, "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                for line in f:
                    if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                        self.include = os.path.join(line.split("=", 1)[1].strip(), "runtime",
                                                    "include")
        # 0: no precompiled prelude; K: every program but each K-th one uses it.
        self.pch_every = pch_every
        self._pch_lock = threading.Lock()
        self._pch = {}

    def pch(self, flags, system_headers):
        """The precompiled prelude for a compile with `flags` (built once, with the same flags,
        cached in the build tree by a hash of everything it depends on), or None when it cannot
        be built (the program is then compiled without it)."""
        include = "<fidelity_support.h>" if system_headers else '"fidelity_support.h"'
        text = f"#pragma once\n{PCH_HEADER}#include {include}\n"
        key = hashlib.sha1(repr((CLANG, flags, text)).encode())
        for path in [self.plugin, os.path.join(HERE, "fidelity_support.h"),
                     *sorted(os.path.join(d, f) for d, _, fs in
                             os.walk(os.path.join(self.include, "mmsb")) for f in fs)]:
            st = os.stat(path)
            key.update(f"{path} {st.st_mtime_ns} {st.st_size}".encode())
        name = key.hexdigest()[:16]
        with self._pch_lock:
            if name in self._pch:
                return self._pch[name]
            d = os.path.join(self.build, "tests", "fidelity", "pch-cache")
            os.makedirs(d, exist_ok=True)
            out = os.path.join(d, name + ".pch")
            if not os.path.exists(out):
                header = os.path.join(d, name + ".h")
                with open(header, "w") as f:
                    f.write(text)
                tmp = f"{out}.{os.getpid()}.tmp"
                rc, _, err = _run([CLANG, *flags, "-x", "c++-header", header, "-o", tmp], d)
                if rc != 0:
                    print(f"fidelity: cannot precompile the prelude, compiling without it: "
                          f"{err[-1000:]}", file=sys.stderr)
                    out = None
                else:
                    os.replace(tmp, out)
            self._pch[name] = out
            return out

    def _find(self, *candidates):
        for c in candidates:
            p = os.path.join(self.build, c)
            if os.path.exists(p):
                return p
        sys.exit(f"fidelity: {candidates[0]} not found in {self.build} (build it first)")


def _run(cmd, cwd, timeout=300, env=None):
    """Runs `cmd`; `timeout` is a limit on its CPU time (RLIMIT_CPU), so that a machine loaded by
    other work does not turn a slow compile into a failure. A process that does not use its CPU
    (a deadlock) is stopped after WALL_FACTOR times that, in wall-clock time."""
    def limit_cpu():
        resource.setrlimit(resource.RLIMIT_CPU, (timeout, timeout + 5))

    # A session of its own: a timeout stops the whole process group (the compiler driver's cc1
    # and linker too, not only the driver).
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, errors="replace", preexec_fn=limit_cpu,
                          start_new_session=True) as p:
        try:
            out, err = p.communicate(timeout=timeout * WALL_FACTOR)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return 124, "", f"timeout after {timeout * WALL_FACTOR}s: {' '.join(cmd)}"
    if p.returncode == -signal.SIGXCPU:
        return 124, out, f"CPU time limit of {timeout}s exceeded: {' '.join(cmd)}"
    return p.returncode, out, err


WALL_FACTOR = 20


def build_and_compare(tools, workdir, system_headers, oracle="self", plain_check=True,
                      use_pch=False):
    """Returns (kind, detail): kind is 'ok', 'rejected', 'plain-broken' or a failure kind:
    'compile', 'crash', 'mismatch', 'semantics'.

    oracle 'self': one instrumented build that also dumps its live pages at every commit point
    (FIDELITY_SELF_DUMP): the log must replay to those bytes. With plain_check, the plain build
    runs too and must print the same bytes (the rewrite keeps the program's meaning).
    oracle 'plain': the plain build's bytes are the ground truth for the log."""
    srcs = sorted(f for f in os.listdir(workdir) if f.endswith(".cc"))
    threaded = any("fid::Worker" in open(os.path.join(workdir, f)).read() for f in srcs)
    common = ["-std=c++20", "-O2", "-pthread", "-w"]

    def with_pch(flags, system_headers):
        """The per-TU compile commands of `flags`: prog.cc with the precompiled prelude, the
        other TUs (a few lines, no headers) without it. [] when no prelude is used."""
        pch = tools.pch(flags, system_headers) if use_pch else None
        if pch is None:
            return []
        cmds = []
        for src in srcs:
            extra = ["-include-pch", pch] if src == "prog.cc" else []
            cmds.append([CLANG, *flags, *extra, "-c", src, "-o", src[:-3] + ".o"])
        return cmds

    def compile_and_link(flags, system_headers, out, libs):
        cmds = with_pch(flags, system_headers)
        if not cmds:
            return _run([CLANG, *flags, *srcs, "-o", out, *libs], workdir)
        for cmd in cmds:
            rc, o, err = _run(cmd, workdir)
            if rc != 0:
                return rc, o, err
        return _run([CLANG, *common, *[s[:-3] + ".o" for s in srcs], "-o", out, *libs], workdir)

    def build_plain():
        return compile_and_link([*common, "-DFIDELITY_PLAIN", "-I", HERE], False, "plain", [])

    plain_built = False
    if oracle == "plain" or plain_check:
        rc, out, err = build_plain()
        if rc != 0:
            return "plain-broken", err[-4000:]
        plain_built = True
    inc = ["-isystem", HERE, "-isystem", tools.include] if system_headers else \
          ["-I", HERE, "-I", tools.include]
    self_dump = ["-DFIDELITY_SELF_DUMP"] if oracle == "self" else []
    rc, out, err = compile_and_link(
        [*common, *self_dump, f"-fplugin={tools.plugin}", "-fplugin-arg-mmsb-no-ir", *inc],
        system_headers, "inst", [tools.runtime, *tools.core, "-lfmt", "-lxxhash", "-lhwy"])
    if rc != 0:
        if not plain_built:
            prc, _, perr = build_plain()
            if prc != 0:
                return "plain-broken", perr[-4000:]
        # A TU that declares a page variable without [[mmsb::page]] references the plain
        # symbol, which the plugin renamed (`_mmsb_page.<name>`): the mix is refused loudly.
        undefined = set(re.findall(r"undefined reference to `([^']+)'", err))
        if undefined and undefined <= PAGE_VARIABLES:
            # The refusal is right; the rest of the program is still checked, with the page
            # declared as it must be (else its other functions would never run).
            tu2 = os.path.join(workdir, "tu2.cc")
            text = open(tu2).read() if os.path.exists(tu2) else ""
            if "\nextern float g_series" in text:
                with open(tu2, "w") as f:
                    f.write(text.replace("\nextern float g_series",
                                         "\n[[mmsb::page]] extern float g_series"))
                kind, detail = build_and_compare(tools, workdir, system_headers, oracle,
                                                 plain_check, use_pch)
                return ("rejected", err[-2000:]) if kind == "ok" else (kind, detail)
            return "rejected", err[-2000:]
        return "compile", err[-4000:]
    expected = None
    if plain_built:
        rc, expected, err = _run(["./plain"], workdir, timeout=120)
        if rc != 0:
            return "plain-broken", f"plain run exited {rc}: {err[-2000:]}"
    shutil.rmtree(os.path.join(workdir, "run.log"), ignore_errors=True)
    env = dict(os.environ)
    env.pop("MMSB_VERIFY", None)
    # Sampled verification repairs the deltas it checks: the log must show what the rewriter's
    # barriers alone recorded, so a miss is a mismatch here rather than a repaired epoch.
    env["MMSB_SAMPLE_VERIFY"] = "0"
    rc, live, err = _run(["./inst", "run.log"], workdir, timeout=120, env=env)
    if rc != 0:
        return "crash", f"instrumented run exited {rc}: {err[-2000:]}"
    if oracle == "self":
        if expected is not None and live != expected:
            return "semantics", ("the instrumented build computes other bytes than the plain "
                                 "one: " + first_difference(expected, live))
        expected = live
    rc, actual, err = _run([tools.replay, "run.log", *PAGES], workdir)
    if rc != 0:
        return "crash", f"fidelity_replay exited {rc}: {err[-2000:]}"
    detail = compare(expected, actual, threaded)
    return ("mismatch", detail) if detail else ("ok", "")


def epochs(text):
    """The states of a dump, one string per epoch, without the epoch numbers."""
    out = []
    for line in text.splitlines():
        if line.startswith("epoch "):
            out.append([])
        elif out:
            out[-1].append(line)
    return ["\n".join(b) for b in out]


def compare(expected, actual, threaded):
    """'' when the log matches: at every commit (exactly, epoch by epoch), or, for programs whose
    worker threads commit in no fixed order, at every commit of the main thread (its states,
    in order, are a subsequence of the log's epochs)."""
    if not threaded:
        return "" if actual == expected else first_difference(expected, actual)
    exp, act = epochs(expected), epochs(actual)
    j = 0
    for i, state in enumerate(exp):
        start = j
        while j < len(act) and act[j] != state:
            j += 1
        if j == len(act):
            near = act[-1] if start >= len(act) else act[start]
            return (f"main-thread commit {i + 1} of {len(exp)}: no later epoch of the log has its "
                    f"state; against epoch {start + 1}: " +
                    first_difference("epoch 1\n" + state, "epoch 1\n" + near))
        j += 1
    return ""


def first_difference(expected, actual):
    exp = expected.splitlines()
    act = actual.splitlines()
    epoch = "?"
    for i in range(max(len(exp), len(act))):
        e = exp[i] if i < len(exp) else "(end)"
        a = act[i] if i < len(act) else "(end)"
        if e.startswith("epoch "):
            epoch = e
        if e == a:
            continue
        if e.split(" ")[0] == a.split(" ")[0] and " " in e and " " in a:
            eb, ab = e.split(" ", 1)[1], a.split(" ", 1)[1]
            offs = [k // 2 for k in range(0, min(len(eb), len(ab)), 2) if eb[k:k + 2] != ab[k:k + 2]]
            return (f"{epoch}: page {e.split(' ')[0]} differs at {len(offs)} byte(s), first at "
                    f"offset {offs[0] if offs else '?'} (plain {eb[offs[0]*2:offs[0]*2+16] if offs else ''}"
                    f" vs log {ab[offs[0]*2:offs[0]*2+16] if offs else ''})")
        return f"line {i + 1}: plain '{e[:80]}' vs log '{a[:80]}'"
    return "outputs differ"


def uses_pch(tools, seed):
    """Whether program `seed` is compiled with the precompiled prelude: all but every
    pch_every-th one, so that the plain include path stays exercised too."""
    return tools.pch_every > 0 and seed % tools.pch_every != 0


def check_one(tools, seed, functions, keep_root, oracle="self", plain_check=True):
    sources, used, system_headers = generate(seed, functions)
    use_pch = uses_pch(tools, seed)
    workdir = tempfile.mkdtemp(prefix=f"fid-{seed}-")
    for name, text in sources.items():
        with open(os.path.join(workdir, name), "w") as f:
            f.write(text)
    kind, detail = build_and_compare(tools, workdir, system_headers, oracle, plain_check, use_pch)
    kept = None
    if kind not in ("ok", "rejected") and keep_root:
        kept = os.path.join(keep_root, f"seed-{seed}")
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(workdir, kept, ignore=shutil.ignore_patterns("plain", "inst", "run.log"))
        write_check_script(tools, kept, kind, system_headers, use_pch)
        with open(os.path.join(kept, "failure.txt"), "w") as f:
            f.write(f"{kind}{' (with the precompiled prelude)' if use_pch else ''}\n{detail}\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return seed, kind, detail, used, kept


def write_check_script(tools, d, kind, system_headers, use_pch=False):
    # cvise runs the test in a directory of its own with only prog.cc: other sources by path.
    srcs = " ".join(f if f == "prog.cc" else os.path.join(os.path.abspath(d), f)
                    for f in sorted(os.listdir(d)) if f.endswith(".cc"))
    with open(os.path.join(d, "check.sh"), "w") as f:
        f.write("#!/bin/sh\n# cvise interestingness test: exit 0 while the failure persists.\n"
                f"exec {sys.executable} {os.path.abspath(__file__)} check --build {tools.build} "
                f"--kind {kind} {'--system-headers ' if system_headers else ''}"
                f"{'--pch ' if use_pch else ''}{srcs}\n")
    os.chmod(os.path.join(d, "check.sh"), 0o755)


def reduce(d):
    if shutil.which("cvise") is None:
        return "cvise not found"
    rc, out, err = _run(["cvise", "--n", "1", "--timeout", "60", "--tidy", "./check.sh", "prog.cc"],
                        d, timeout=3600)
    return "reduced" if rc == 0 else f"cvise failed: {err[-500:]}"


def cmd_check(args):
    tools = Tools(args.build)
    workdir = tempfile.mkdtemp(prefix="fid-check-")
    try:
        for f in args.files:
            shutil.copy(f, workdir)
        kind, _ = build_and_compare(tools, workdir, args.system_headers, "self", True, args.pch)
        return 0 if kind == args.kind else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# A store the rewriter cannot see (a uintptr_t round trip, documented as untracked): a real lost
# store, planted to check the reduction pipeline end to end.
PLANTED = ("void planted() { std::uintptr_t u = reinterpret_cast<std::uintptr_t>(&g1.a[5]); "
           "*reinterpret_cast<int*>(u) = 77; }\n")


def cmd_selftest_reduce(args):
    tools = Tools(args.build)
    sources, _, system_headers = generate(args.seed, args.functions)
    prog = sources["prog.cc"].replace("int main(int argc", PLANTED + "int main(int argc", 1)
    prog = prog.replace("  return fid::Finish();", "  planted(); fid::CommitPoint();\n"
                        "  return fid::Finish();", 1)
    prog = "#include <cstdint>\n" + prog
    d = tempfile.mkdtemp(prefix="fid-reduce-")
    with open(os.path.join(d, "prog.cc"), "w") as f:
        f.write(prog)
    for name, text in sources.items():
        if name != "prog.cc":
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    kind, detail = build_and_compare(tools, d, system_headers)
    if kind != "mismatch":
        print(f"fidelity: the planted lost store was not found ({kind}: {detail[:300]})")
        return 1
    write_check_script(tools, d, kind, system_headers)
    before = len(prog.splitlines())
    outcome = reduce(d)
    with open(os.path.join(d, "prog.cc")) as f:
        reduced = f.read()
    after = len([l for l in reduced.splitlines() if l.strip()])
    print(f"fidelity: {outcome}: {before} lines -> {after} non-empty lines ({d}/prog.cc)")
    print(reduced)
    # Still failing (cvise keeps only interesting variants), and a fraction of the size.
    ok = outcome == "reduced" and after <= before // 4
    shutil.rmtree(d, ignore_errors=True) if ok else None
    return 0 if ok else 1


def cmd_run(args):
    tools = Tools(args.build, args.pch_every)
    keep_root = args.keep or tempfile.mkdtemp(prefix="fidelity-failures-")
    os.makedirs(keep_root, exist_ok=True)
    seeds = range(args.seed, args.seed + args.count)
    counts = {}
    failures = []
    classes = set()
    done = 0
    # --results: one JSON line per finished program, so that a campaign that is stopped keeps
    # what it did, and a rerun with the same file runs only the seeds it has no line for.
    previous = {}
    if args.results and os.path.exists(args.results):
        with open(args.results) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                if rec.get("functions") == args.functions and rec.get("seed") in seeds:
                    previous[rec["seed"]] = rec
    results = open(args.results, "a") if args.results else None

    def account(seed, kind, detail, used, kept):
        nonlocal done
        for name in used:
            counts[name] = counts.get(name, 0) + 1
        done += 1
        if args.progress:
            print(f"fidelity: [{done}/{args.count}] seed {seed}: {kind}", file=sys.stderr,
                  flush=True)
        if kind in ("ok", "rejected"):
            return
        if kind == "plain-broken":
            print(f"fidelity: seed {seed}: the generator made an invalid program: {detail[:500]}",
                  file=sys.stderr)
        else:
            print(f"fidelity: seed {seed}: {kind}: {detail[:600]}\n  kept in {kept}",
                  file=sys.stderr)
        failures.append((seed, kind, detail, kept))

    for seed in sorted(previous):
        rec = previous[seed]
        account(seed, rec["kind"], rec["detail"], rec["used"], rec.get("kept"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(check_one, tools, s, args.functions, keep_root, args.oracle,
                               args.oracle == "plain" or (s - args.seed) % args.plain_every == 0)
                   for s in seeds if s not in previous]
        for fut in concurrent.futures.as_completed(futures):
            seed, kind, detail, used, kept = fut.result()
            if results:
                results.write(json.dumps({"seed": seed, "functions": args.functions, "kind": kind,
                                          "detail": detail[:2000], "used": used, "kept": kept,
                                          "pch": uses_pch(tools, seed)}) + "\n")
                results.flush()
            account(seed, kind, detail, used, kept)
    functions = args.count * args.functions
    # Which defect classes the failures point at: reduce each failing program by functions
    # (bisect the productions) only when asked; the cheap attribution runs each failing
    # program's productions alone.
    if failures and (args.figures or args.attribute):
        for seed, kind, detail, kept in failures:
            if kind == "plain-broken":
                continue
            classes |= attribute(tools, seed, args.functions, classes)
    if args.reduce:
        for seed, kind, detail, kept in failures:
            if kept:
                print(f"fidelity: reducing seed {seed}: {reduce(kept)} ({kept}/prog.cc)",
                      file=sys.stderr)
    print(f"fidelity: {args.count} programs (seeds {args.seed}..{args.seed + args.count - 1}), "
          f"{functions} generated functions, {len(failures)} failing programs")
    print("fidelity: productions used: " +
          ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if args.figures or args.attribute:
        print(f"fidelity: defect classes of issue 13 found: {sorted(classes)}")
    if args.figures:
        print(f"FIGURE fidelity.generated_functions {functions} functions")
        print(f"FIGURE fidelity.generated_failures {len(failures)} programs")
        print(f"FIGURE fidelity.rediscovered_classes {len(classes)} classes")
    return 1 if failures else 0


def cmd_summary(args):
    """What a --results file holds so far (a campaign still running, or stopped)."""
    recs = {}
    with open(args.results) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            recs[(rec["seed"], rec["functions"])] = rec
    counts = {name: 0 for name in PRODUCTIONS}
    kinds = {}
    for rec in recs.values():
        for name in rec["used"]:
            counts[name] += 1
        kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
    seeds = sorted(seed for seed, _ in recs)
    functions = sum(len(rec["used"]) for rec in recs.values())
    failing = [rec for rec in recs.values() if rec["kind"] not in ("ok", "rejected")]
    print(f"fidelity: {len(recs)} programs (seeds {seeds[0] if seeds else '-'}.."
          f"{seeds[-1] if seeds else '-'}), {functions} generated functions, "
          f"{len(failing)} failing programs; outcomes: "
          + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print(f"fidelity: {sum(1 for r in recs.values() if r.get('pch'))} of them with the "
          "precompiled prelude")
    print("fidelity: productions used (fewest first): " +
          ", ".join(f"{k}={v}" for k, v in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))))
    for rec in sorted(failing, key=lambda r: r["seed"]):
        print(f"fidelity: seed {rec['seed']}: {rec['kind']}: {rec['detail'][:600]}")
    if args.figures:
        print(f"FIGURE fidelity.generated_functions {functions} functions")
        print(f"FIGURE fidelity.generated_failures {len(failing)} programs")
    return 1 if failing else 0


def attribute(tools, seed, functions, known=frozenset()):
    """The defect classes behind a failing program: each of its functions alone, as a program
    of its own (same seed stream), tells which production fails. Classes in `known` (found in
    another program already) are not tried again."""
    r_sources, used, system_headers = generate(seed, functions)
    found = set(known)
    text = r_sources["prog.cc"]
    prelude, rest = text.split("void f0()", 1)
    bodies = ("void f0()" + rest).split("\nint main(")[0].split("// ")
    for chunk in bodies:
        chunk = chunk.strip()
        if not chunk:
            continue
        name = chunk.split("\n", 1)[0].strip()
        cls = DEFECT_CLASS.get(name)
        if cls is None or cls in found:
            continue
        body = chunk.split("\n", 1)[1].replace("void f", "void single_f", 1)
        fname = body.split("(", 1)[0].replace("void ", "").strip()
        prog = (prelude.rsplit("// ", 1)[0] + body + "\n" + MAIN_START +
                f"  {fname}(); fid::CommitPoint();\n  return fid::Finish();\n}}\n")
        workdir = tempfile.mkdtemp(prefix=f"fid-attr-{seed}-")
        with open(os.path.join(workdir, "prog.cc"), "w") as f:
            f.write(prog)
        if "tu2.cc" in r_sources and "WriteSeries" in body:
            with open(os.path.join(workdir, "tu2.cc"), "w") as f:
                f.write(r_sources["tu2.cc"])
        kind, detail = build_and_compare(tools, workdir, system_headers,
                                         use_pch=uses_pch(tools, seed))
        shutil.rmtree(workdir, ignore_errors=True)
        if kind not in ("ok", "rejected", "plain-broken"):
            found.add(cls)
            print(f"fidelity: seed {seed}: production {name} alone fails ({kind}: "
                  f"{detail[:300]}): defect class {cls}", file=sys.stderr, flush=True)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
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
        return cmd_run(args)
    if args.cmd == "summary":
        return cmd_summary(args)
    if args.cmd == "selftest-reduce":
        return cmd_selftest_reduce(args)
    return cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
