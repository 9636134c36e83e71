"""The tools a generated program is built and checked with."""

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading

# tests/fidelity: fidelity_support.h and the fidelity.py entry point.
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
CLANG = shutil.which("clang++-19") or "/usr/lib/llvm-19/bin/clang++"
# How a program is linked. Linking the runtime archive (built with debug info) was a quarter of a
# program's CPU time: the output's debug sections are left out (-S, nothing checked reads them),
# and lld, where installed, links in a third of GNU ld's time. Either linker refuses a page
# variable declared without [[mmsb::page]] (oracle.undefined_symbols reads both messages).
LINK_FLAGS = (["-fuse-ld=lld", "-Wl,--threads=1"] if shutil.which("ld.lld") else []) + ["-Wl,-S"]

# The precompiled prelude (--pch-every): every standard header a production may use and
# fidelity_support.h (with MMSB's headers), nothing of the generated code, no page type. Parsing
# these headers twice (the plugin's analysis and its compile of the rewritten source) was most of
# a program's cost. A program built with it includes the same headers again (#pragma once and
# include guards make that a no-op), so its source is the same as without it.
PCH_HEADER = "".join(f"#include <{h}>\n" for h in
                     ["algorithm", "array", "atomic", "bitset", "charconv", "cstdio", "cstring",
                      "functional", "memory", "mutex", "numeric", "optional", "span", "thread",
                      "tuple", "utility", "variant"])


# The prelude's pending template instantiations are done once, in the PCH, not in every program
# that uses it (a fifth of a plugin compile); a program's object file is the same either way.
PCH_FLAGS = ["-fpch-instantiate-templates"]


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
        key = hashlib.sha1(repr((CLANG, flags, PCH_FLAGS, text)).encode())
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
                rc, _, err = _run([CLANG, *flags, *PCH_FLAGS, "-x", "c++-header", header, "-o",
                                   tmp], d)
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


def normal_priority():
    """Leaves a real-time scheduling policy (bench/run --realtime passes SCHED_FIFO down to its
    scripts): generated programs hand work between threads by spinning (thread_commit), and a
    spinning thread at SCHED_FIFO never yields its CPU to the thread it waits for. With more such
    threads than CPUs (two programs at once on two CPUs) the program livelocks until its CPU limit,
    a failure of the machine's scheduling, not of MMSB. Nothing the campaign does is timed."""
    if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _run(cmd, cwd, timeout=300, env=None):
    """Runs `cmd`; `timeout` is a limit on its CPU time (RLIMIT_CPU), so that a machine loaded by
    other work does not turn a slow compile into a failure. A process that does not use its CPU
    (a deadlock) is stopped after WALL_FACTOR times that, in wall-clock time."""
    def limit_cpu():
        resource.setrlimit(resource.RLIMIT_CPU, (timeout, timeout + 5))
        normal_priority()

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
