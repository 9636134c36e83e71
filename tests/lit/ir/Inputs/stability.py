"""Builds Inputs/stable.cpp four times into one fresh IR store (base, rebuild, shifted lines,
unrelated edit) with the given flags, always as the same TU (same source path and object), and
prints what `mmsb ir diff --json` says between consecutive builds. Used by
normalize-stability.test."""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--cxx", required=True)
ap.add_argument("--mmsb", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--flags", required=True)
args = ap.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
tag = args.flags.replace(" ", "").replace("-", "")
work = os.path.join(args.work, "build" + tag)
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
store = os.path.join(work, "ir.db")
env = dict(os.environ, MMSB_IR_STORE=store)
env.pop("MMSB_BUILD_GENERATION", None)
tu = os.path.join(work, "t.cpp")

variants = [os.path.join(here, "stable.cpp"), os.path.join(here, "stable.cpp"),
            os.path.join(args.work, "shifted.cpp"), os.path.join(args.work, "edited.cpp")]
for src in variants:
    shutil.copyfile(src, tu)
    cmd = shlex.split(args.cxx) + shlex.split(args.flags) + ["-c", tu, "-o", os.path.join(work, "t.o")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0 or r.stderr.strip():
        sys.exit("compile failed or warned: %s\n%s" % (" ".join(cmd), r.stderr))


def diff(a, b, stage):
    out = subprocess.run([args.mmsb, "ir", "diff", str(a), str(b), "--stage", stage, "--json",
                          "--store", store], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def names(d, kind):
    return " ".join(sorted(f["name"] for f in d["functions"] if f["kind"] == kind))


for label, a, b in (("rebuild", 1, 2), ("shift", 2, 3)):
    for stage in ("pre", "post"):
        s = diff(a, b, stage)["summary"]
        print("%s %s: %d changed, %d added, %d removed" % (label, stage, s["changed"], s["added"],
                                                          s["removed"]))
d = diff(3, 4, "pre")
for kind in ("changed", "added", "removed"):
    print("edit pre %s: %s" % (kind, names(d, kind)))
# At post, inlining may pull Edited() into its callers; nothing else may change.
d = diff(3, 4, "post")
allowed = {"_Z6Editedi", "_Z4Taili", "_Z5Firsti", "_ZZ5FirstiENK3$_0clEi"}
extra = sorted(f["name"] for f in d["functions"] if f["name"] not in allowed)
print("edit post unchanged-expected: %s" % ("ok" if not extra else "unexpected " + " ".join(extra)))
