"""Building a program with and without the plugin, and comparing its replayed log with the
ground truth at every commit."""

import os
import re
import shutil

from .grammar import HEAP_PAGES, PAGE_VARIABLES, PAGES
from .toolchain import CLANG, HERE, LINK_FLAGS, _run


def undefined_symbols(err):
    """The symbols a link failed on, from GNU ld's or lld's messages."""
    return {a or b.strip() for a, b in
            re.findall(r"undefined reference to `([^']+)'|undefined symbol: ([^\n]+)", err)}


def build_and_compare(tools, workdir, system_headers, oracle="self", plain_check=True,
                      use_pch=False, retry=None):
    """Returns (kind, detail): kind is 'ok', 'rejected', 'plain-broken' or a failure kind:
    'compile', 'crash', 'mismatch', 'semantics'.

    oracle 'self': one instrumented build that also dumps its live pages at every commit point
    (FIDELITY_SELF_DUMP): the log must replay to those bytes. With plain_check, the plain build
    runs too and must print the same bytes (the rewrite keeps the program's meaning).
    oracle 'plain': the plain build's bytes are the ground truth for the log.

    retry (internal): after a refused mix, the source that was corrected; the plain build (the
    correction does not change it: the plain compiler ignores the attribute) and, with the
    precompiled prelude, the other TUs' instrumented objects are the first attempt's."""
    srcs = sorted(f for f in os.listdir(workdir) if f.endswith(".cc"))
    threaded = any("fid::Worker" in open(os.path.join(workdir, f)).read() for f in srcs)
    common = ["-std=c++20", "-O2", "-pthread", "-w"]

    def with_pch(flags, system_headers, out):
        """The per-TU compile commands of `flags`: prog.cc with the precompiled prelude, the
        other TUs (a few lines, no headers) without it. [] when no prelude is used."""
        pch = tools.pch(flags, system_headers) if use_pch else None
        if pch is None:
            return []
        cmds = []
        for src in srcs:
            if retry is not None and src != retry:
                continue  # its object is the first attempt's
            extra = ["-include-pch", pch] if src == "prog.cc" else []
            cmds.append([CLANG, *flags, *extra, "-c", src, "-o", f"{src[:-3]}.{out}.o"])
        return cmds

    def compile_and_link(flags, system_headers, out, libs):
        cmds = with_pch(flags, system_headers, out)
        if not cmds:
            return _run([CLANG, *flags, *srcs, *LINK_FLAGS, "-o", out, *libs], workdir)
        for cmd in cmds:
            rc, o, err = _run(cmd, workdir)
            if rc != 0:
                return rc, o, err
        return _run([CLANG, *common, *[f"{s[:-3]}.{out}.o" for s in srcs], *LINK_FLAGS, "-o",
                     out, *libs], workdir)

    def build_plain():
        return compile_and_link([*common, "-DFIDELITY_PLAIN", "-I", HERE], False, "plain", [])

    plain_built = False
    if retry is not None and (oracle == "plain" or plain_check):
        plain_built = True  # the first attempt's
    elif oracle == "plain" or plain_check:
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
        # A TU that declares a page variable without [[mmsb::page]] references the plain
        # symbol, which the plugin renamed (`_mmsb_page.<name>`): the mix is refused loudly.
        undefined = undefined_symbols(err)
        refused = undefined and undefined <= PAGE_VARIABLES and retry is None
        # Any other failure is the plugin's only if the plain build compiles.
        if not plain_built and not refused:
            prc, _, perr = build_plain()
            if prc != 0:
                return "plain-broken", perr[-4000:]
        if refused:
            # The refusal is right; the rest of the program is still checked, with the page
            # declared as it must be (else its other functions would never run).
            tu2 = os.path.join(workdir, "tu2.cc")
            text = open(tu2).read() if os.path.exists(tu2) else ""
            if "\nextern float g_series" in text:
                with open(tu2, "w") as f:
                    f.write(text.replace("\nextern float g_series",
                                         "\n[[mmsb::page]] extern float g_series"))
                kind, detail = build_and_compare(tools, workdir, system_headers, oracle,
                                                 plain_check, use_pch, retry="tu2.cc")
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
    # The heap pages, by the ids the instrumented run reported (fidelity_support.h, TrackHeap).
    heap = []
    for name, where in re.findall(r"^fid-heap (\S+) (.*)$", err, re.M):
        if where == "none":
            return "mismatch", f"the heap object '{name}' (new of a page type) is in no page"
        page, offset, size = where.split()
        heap.append(f"{name}={page}+{offset}:{size}")
    if len(heap) != len(HEAP_PAGES):
        return "crash", f"the instrumented run reported {len(heap)} of {len(HEAP_PAGES)} heap pages"
    rc, actual, err = _run([tools.replay, "run.log", *PAGES, *heap], workdir)
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
