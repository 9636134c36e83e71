"""Running a campaign of programs, summarising a results file, attributing failures."""

import concurrent.futures
import json
import os
import shutil
import sys
import tempfile

from .grammar import DEFECT_CLASS, MAIN_START, PRODUCTIONS, generate
from .oracle import build_and_compare, uses_pch
from .reduce import reduce, write_check_script
from .toolchain import Tools


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
        shutil.copytree(workdir, kept, ignore=shutil.ignore_patterns("plain", "inst", "run.log", "*.o"))
        write_check_script(tools, kept, kind, system_headers, use_pch)
        with open(os.path.join(kept, "failure.txt"), "w") as f:
            f.write(f"{kind}{' (with the precompiled prelude)' if use_pch else ''}\n{detail}\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return seed, kind, detail, used, kept



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
