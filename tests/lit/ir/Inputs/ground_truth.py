"""Diff correctness against ground truth (ground-truth.test).

Builds Inputs/gt/v1 and then Inputs/gt/v2 (a three-TU project whose differences are listed in
Inputs/gt/truth.txt) as the same TUs into one IR store, and checks `mmsb ir diff 1 2`:
  - at `pre`, the reported changes are exactly the ground truth;
  - at `post`, every truth function still present is reported, and every other reported
    function calls a truth function (inlining pulled the change into it);
then compares the changed-function set with llvm-diff on the same pair of modules (clang's
output before any pass, as the `pre` capture sees it), and prints where they disagree."""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--cxx", required=True)
ap.add_argument("--cxx-plain", required=True)
ap.add_argument("--mmsb", required=True)
ap.add_argument("--llvm-diff", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--flags", required=True)
args = ap.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
gt = os.path.join(here, "gt")
work = os.path.join(args.work, args.flags.replace(" ", "").replace("-", ""))
shutil.rmtree(work, ignore_errors=True)
src, obj = os.path.join(work, "src"), os.path.join(work, "obj")
os.makedirs(src)
os.makedirs(obj)
store = os.path.join(work, "ir.db")
env = dict(os.environ, MMSB_IR_STORE=store)
env.pop("MMSB_BUILD_GENERATION", None)
TUS = ["a", "b", "c"]


def build(version):
    for f in os.listdir(os.path.join(gt, version)):
        shutil.copyfile(os.path.join(gt, version, f), os.path.join(src, f))
    for t in TUS:
        cmd = shlex.split(args.cxx) + shlex.split(args.flags) + [
            "-c", os.path.join(src, t + ".cpp"), "-o", os.path.join(obj, t + ".o")]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            sys.exit("compile failed: %s\n%s" % (" ".join(cmd), r.stderr))
        # The same TU as clang emits it, before any pass: what llvm-diff compares.
        plain = shlex.split(args.cxx_plain) + shlex.split(args.flags) + [
            "-Xclang", "-disable-llvm-passes", "-S", "-emit-llvm",
            os.path.join(src, t + ".cpp"), "-o", os.path.join(work, "%s-%s.ll" % (version, t))]
        subprocess.run(plain, check=True)


def mmsb(*a):
    return json.loads(subprocess.run([args.mmsb, "ir"] + list(a) + ["--json", "--store", store],
                                     check=True, capture_output=True, text=True).stdout)


build("v1")
build("v2")

truth = set()
for line in open(os.path.join(gt, "truth.txt")):
    line = line.split("#")[0].split()
    if line:
        truth.add(tuple(line))


def reported(stage):
    out = set()
    for f in mmsb("diff", "1", "2", "--stage", stage)["functions"]:
        tu = os.path.basename(f["tu"])
        if f["kind"] == "renamed":
            out.add((tu, "renamed", f["old_name"], f["name"]))
        else:
            out.add((tu, f["kind"], f["name"]))
    return out


pre = reported("pre")
print("pre missing:", " ".join(sorted(" ".join(x) for x in truth - pre)) or "none")
print("pre extra:", " ".join(sorted(" ".join(x) for x in pre - truth)) or "none")

# post: a truth function is reported when its optimised IR differs; the optimiser may also make
# a change vanish (then it is listed, not reported).
def show(name, gen, stage):
    r = subprocess.run([args.mmsb, "ir", "show", name, "--gen", gen, "--stage", stage, "--store",
                        store], capture_output=True, text=True)
    # Drop the header (it names the generation); keep the normalised IR.
    return "\n".join(l for l in r.stdout.splitlines() if not l.startswith("; ")) if r.returncode == 0 else None


post = reported("post")
post_reported_names = {x[2] for x in post} | {x[3] for x in post if len(x) > 3}
truth_names = {x[2] for x in truth} | {x[3] for x in truth if len(x) > 3}
missing, vanished = [], []
for n in sorted(truth_names):
    a, b = show(n, "1", "post"), show(n, "2", "post")
    if a == b:
        if n in post_reported_names:
            missing.append(n + "(reported but equal)")
        elif a is not None:
            vanished.append(n)
    elif n not in post_reported_names and not any(x[1] == "renamed" for x in post if n in x):
        missing.append(n)
print("post missing:", " ".join(missing) or "none")
print("post truth the optimiser made identical:", " ".join(vanished) or "none")
extra, unexplained = [], []
for n in sorted(post_reported_names - truth_names):
    text = (show(n, "1", "pre") or "") + (show(n, "2", "pre") or "")
    calls = [t for t in sorted(truth_names) if "@" + t + "(" in text or '@"' + t + '"(' in text]
    (extra if calls else unexplained).append(n + (" (calls " + ",".join(calls) + ")" if calls else ""))
print("post extra, inlined a change:", " ".join(extra) or "none")
print("post extra, unexplained:", " ".join(unexplained) or "none")

# llvm-diff on the same pair, TU by TU.
ours = {x[2] for x in pre} | {x[3] for x in pre if len(x) > 3}
llvm = set()
declarations = set()
for t in TUS:
    left = os.path.join(work, "v1-%s.ll" % t)
    right = os.path.join(work, "v2-%s.ll" % t)
    defined = set()
    for path in (left, right):
        defined |= set(m.strip('"') for m in re.findall(r'^define [^@]*@("[^"]+"|[\w.$]+)\(',
                                                        open(path).read(), re.M))
    r = subprocess.run([args.llvm_diff, left, right], capture_output=True, text=True)
    if r.returncode not in (0, 1) or "error:" in r.stderr:
        sys.exit("%s failed (%d): %s" % (args.llvm_diff, r.returncode, r.stderr))
    for line in (r.stdout + r.stderr).splitlines():
        m = re.match(r'function @("?)(.+?)\1 exists only in (left|right) module', line) or \
            re.match(r'in function ()(.+?):$', line)
        if not m:
            continue
        name = m.group(2)
        (llvm if name in defined else declarations).add(name)
print("llvm-diff only:", " ".join(sorted(llvm - ours)) or "none")
print("mmsb only:", " ".join(sorted(ours - llvm)) or "none")
print("llvm-diff declarations:", " ".join(sorted(declarations)) or "none")
renames = sorted("%s->%s" % (x[2], x[3]) for x in pre if x[1] == "renamed")
print("mmsb renames (llvm-diff: one function only in each module):", " ".join(renames) or "none")
