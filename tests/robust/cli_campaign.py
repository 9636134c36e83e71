#!/usr/bin/env python3
"""Every `mmsb` subcommand x every kind of wrong input: each must fail with a clear message.

  cli_campaign.py --mmsb build/tools/mmsb --fixtures build/tests/robust/robust_fixtures
                  [--scratch DIR] [--table] [--figures]

The wrong inputs: a path that is missing, a directory that is not a log (or store), an empty
file, random bytes, foreign formats (ELF, SQLite, gzip, text), a truncated file or log, a
flipped byte (header and body), a checkpoint file asked about another epoch, out-of-range values
(epochs, page ids, types, generations, counts) and conflicting flags.

A case passes when the command exits non-zero, prints at most one `mmsb: error:` line, and a
line of its stderr that reports the error names the input (the path or the bad value). A case
that exits 0 answered some other question: it counts as a silent wrong answer. Controls run
the same commands on the valid inputs (they must succeed) and valid filters that match nothing
(they must succeed and say so), so that the campaign cannot pass by everything failing.

--table prints one row per case; --figures prints
  FIGURE robustness.cli_cases N count
  FIGURE robustness.silent_wrong_answers N count
Exit status: 0 when every case and control passes.
"""
import argparse
import gzip
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

LOG_COMMANDS = {
    # name: (argv after the log path, supports --json, supports --salvage)
    "log show": (["log", "show"], [], True, True),
    "log stats": (["log", "stats"], [], True, True),
    "log verify": (["log", "verify"], ["-q"], True, True),
    "replay": (["replay"], ["--epoch", "latest", "-q"], True, True),
    "replay epoch": (["replay"], ["--epoch", "2", "-q"], True, True),
    "replay out": (["replay"], ["--epoch", "2", "-q", "--out", "@OUT@"], False, True),
    "diff": (["diff"], ["--from", "1", "--to", "4", "-q"], True, True),
    "log compact": (["log", "compact"], ["--keep", "1"], True, False),
    "log compact --max-age": (["log", "compact"], ["--max-age", "1d"], True, False),
    # The questions asked of the log's index (docs/Queries.md), the HTML report and slicing.
    "history": (["history"], ["Pair.a"], True, False),
    "blame": (["blame"], ["Pair.a"], True, False),
    "bisect": (["bisect"], ["--where", "Pair.a==3"], True, False),
    "touched": (["touched"], ["Pair.a"], True, False),
    "why": (["why"], ["Pair.a", "--store", "@STORE@"], True, False),
    "slice": (["slice"], ["--from", "3", "--to", "5", "-o", "@OUT@"], True, False),
    "report": (["report"], ["-o", "@OUTFILE@", "-q"], False, True),
}

# `ir new-generation` is the pre-build step: before the first build there is no store, and it
# creates one (a missing path, a directory that gets DIR/ir.db, an empty file SQLite reads as an
# empty database). Those are valid questions for it, not wrong input.
CREATES_STORE = {"ir new-generation": {"missing", "directory", "empty"}}

# A log cut in its first epoch is what a crash leaves: listing, verifying or replaying `latest`
# answer correctly (the torn tail is cut and reported as a warning). Asking for an epoch that was
# lost is the wrong question.
TRUNCATED_LOG_QUESTIONS = {"replay epoch", "replay out", "diff"}

IR_COMMANDS = {
    # name: (argv, supports --json)
    "ir builds": (["ir", "builds"], True),
    "ir functions": (["ir", "functions", "--gen", "latest"], True),
    "ir show": (["ir", "show", "foo", "--gen", "latest"], False),
    "ir diff": (["ir", "diff", "1", "2"], True),
    "ir history": (["ir", "history", "foo"], True),
    "ir gc": (["ir", "gc", "--keep", "5", "--timeout", "2"], False),
    "ir new-generation": (["ir", "new-generation", "--timeout", "2"], False),
    "ir report": (["ir", "report", "1", "2", "-o", "@OUTFILE@", "-q"], False),
    "ir gate": (["ir", "gate", "1", "2", "--budget", "@BUDGET@"], True),
}


class Campaign:
    def __init__(self, mmsb, scratch, store="", budget=""):
        self.mmsb = mmsb
        self.scratch = scratch
        self.store = store  # @STORE@: the valid IR store
        self.budget = budget  # @BUDGET@: a valid gate budget
        self.rows = []  # (kind, command, input, rc, verdict, first error line)
        self.controls_failed = []
        self.out_counter = 0

    def run(self, argv, env=None):
        e = dict(os.environ)
        e.pop("MMSB_IR_STORE", None)
        e["NO_COLOR"] = "1"
        if env:
            e.update(env)
        p = subprocess.run([self.mmsb] + argv, capture_output=True, text=True, errors="replace",
                           cwd=self.scratch, env=e, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def fresh_out(self, argv):
        out = []
        for a in argv:
            if a in ("@OUT@", "@OUTFILE@"):
                self.out_counter += 1
                path = os.path.join(self.scratch, "out", str(self.out_counter))
                a = path + ".html" if a == "@OUTFILE@" else path
            elif a == "@STORE@":
                a = self.store
            elif a == "@BUDGET@":
                a = self.budget
            out.append(a)
        return out

    def case(self, kind, command, argv, names, json_out=False, env=None):
        """A wrong input: must fail with one clear line that names `names`."""
        argv = self.fresh_out(argv)
        rc, out, err = self.run(argv, env)
        lines = err.splitlines()
        errors = [l for l in lines if l.startswith("mmsb: error:")]
        reports = [l for l in lines if "error" in l]
        named = any(names in l for l in reports)
        verdict = "ok"
        if rc == 0:
            verdict = "SILENT"
        elif rc < 0:
            verdict = "CRASH"
        elif len(errors) > 1:
            verdict = "TWICE"
        elif not reports:
            verdict = "NO-MESSAGE"
        elif not named:
            verdict = "UNNAMED"
        elif json_out:
            try:
                j = json.loads(out)
                if j.get("ok", False) is not False and "error" not in j:
                    verdict = "JSON-NOT-FAILED"
            except ValueError:
                verdict = "NO-JSON"
        first = (errors or reports or [""])[0]
        self.rows.append((kind, command, names, " ".join(argv), rc, verdict, first))

    def control(self, what, argv, expect_stdout=None, env=None):
        """A valid question: must succeed (and say `expect_stdout` when given)."""
        rc, out, err = self.run(self.fresh_out(argv), env)
        if rc != 0 or (expect_stdout is not None and expect_stdout not in out):
            self.controls_failed.append(f"{what}: exit {rc}\n  $ mmsb {' '.join(argv)}\n"
                                        f"  stdout: {out[-400:]}\n  stderr: {err[-400:]}")


def make_inputs(scratch, good_log, good_store):
    """name -> (path, the string an error must name) for files that are not (usable) logs."""
    rnd = random.Random(15)
    seg = os.path.join(good_log, "00000001.seg")
    ckpt = [f for f in os.listdir(good_log) if f.endswith(".ckpt")][0]

    def write(name, data):
        path = os.path.join(scratch, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    seg_bytes = open(seg, "rb").read()
    inputs = {}
    inputs["missing"] = os.path.join(scratch, "nowhere.tlog")
    plain = os.path.join(scratch, "plain_dir")
    os.makedirs(plain, exist_ok=True)
    write("plain_dir/notes.txt", b"not a log\n")
    inputs["directory"] = plain
    inputs["empty"] = write("empty.tlog", b"")
    inputs["random"] = write("random.bin", bytes(rnd.getrandbits(8) for _ in range(4096)))
    inputs["elf"] = write("program.elf", open("/bin/true", "rb").read())
    db = os.path.join(scratch, "foreign.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    inputs["sqlite"] = db
    inputs["gzip"] = write("data.gz", gzip.compress(b"hello " * 100))
    inputs["text"] = write("readme.txt", b"this is a text file\n" * 20)
    inputs["truncated header"] = write("short.seg", seg_bytes[:30])
    flipped = bytearray(seg_bytes)
    flipped[20] ^= 0x40  # inside the header: its checksum fails
    inputs["flipped header"] = write("flipped_header.seg", bytes(flipped))
    # A log directory whose only segment was cut in its first epoch, and one with a byte flipped
    # in the first epoch's records (every question reads through it).
    d = os.path.join(scratch, "truncated.tlog")
    shutil.copytree(good_log, d)
    for f in os.listdir(d):
        if f.endswith(".ckpt"):
            os.remove(os.path.join(d, f))
    with open(os.path.join(d, "00000001.seg"), "r+b") as f:
        f.truncate(120)
    inputs["truncated log"] = d
    d = os.path.join(scratch, "flipped_body.tlog")
    shutil.copytree(good_log, d)
    for f in os.listdir(d):
        if f.endswith(".ckpt"):
            os.remove(os.path.join(d, f))
    body = bytearray(seg_bytes)
    body[80] ^= 0x01
    write("flipped_body.tlog/00000001.seg", bytes(body))
    inputs["flipped log"] = d
    # The IR store's own damage: cut in half, and its header page overwritten.
    store = open(good_store, "rb").read()
    inputs["truncated store"] = write("truncated.db", store[:len(store) // 3])
    bad = bytearray(store)
    bad[0:16] = b"not sqlite at al"
    inputs["flipped store"] = write("flipped.db", bytes(bad))
    return inputs, os.path.join(good_log, ckpt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmsb", required=True)
    ap.add_argument("--fixtures", required=True, help="the robust_fixtures binary")
    ap.add_argument("--scratch")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--figures", action="store_true")
    ap.add_argument("--matrix", action="store_true",
                    help="print command x kind of input: cases, non-zero exits, silent answers")
    args = ap.parse_args()
    scratch = args.scratch or tempfile.mkdtemp(prefix="mmsb-cli-campaign-")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(os.path.join(scratch, "out"))
    subprocess.run([args.fixtures, scratch], check=True)
    good_log = os.path.join(scratch, "good.tlog")
    good_store = os.path.join(scratch, "ir.db")
    store_dir = os.path.join(scratch, "store_dir")
    os.makedirs(store_dir)
    shutil.copy(good_store, os.path.join(store_dir, "ir.db"))
    inputs, ckpt = make_inputs(scratch, good_log, good_store)
    budget = os.path.join(scratch, "budget.json")
    with open(budget, "w") as f:
        f.write('{"stage": "pre", "top": 5}\n')
    c = Campaign(os.path.abspath(args.mmsb), scratch, good_store, budget)

    # Controls first: every command answers the valid inputs.
    compacted = os.path.join(scratch, "compacted.tlog")
    shutil.copytree(good_log, compacted)
    aged = os.path.join(scratch, "aged.tlog")
    shutil.copytree(good_log, aged)
    for name, (cmd, rest, has_json, _) in LOG_COMMANDS.items():
        path = {"log compact": compacted, "log compact --max-age": aged}.get(name, good_log)
        c.control(name, cmd + [path] + rest)
    # Valid questions with empty answers succeed and say so.
    c.control("log compact --max-age: every checkpoint is younger", ["log", "compact", aged, "--max-age", "1d"],
              "removed 0 checkpoint(s)")
    c.control("history: a field that never changed", ["history", good_log, "Pair.b"], "0 change(s)")
    c.control("touched: a field that never changed", ["touched", good_log, "Pair.b"], "0 epoch(s)")
    c.control("bisect: a predicate that never holds", ["bisect", good_log, "--where", "Pair.a==99"], "never holds")
    c.control("bisect: holds from the start", ["bisect", good_log, "--where", "1 == 1"], "initial state")
    c.control("history: up to the last epoch", ["history", good_log, "Pair.a", "--from", "2", "--to", "5"], "3 change(s)")
    c.control("blame: at the last epoch", ["blame", good_log, "Pair.a", "--at", "5"], "epoch 5")
    c.control("ir gate: within budget", ["ir", "gate", "1", "2", "--budget", budget, "--store", good_store],
              "within budget")
    c.control("replay after compaction", ["replay", compacted, "--epoch", "5", "-q"])
    c.control("replay checkpoint at its epoch", ["replay", ckpt, "--epoch", "3", "-q"])
    c.control("replay out into an empty dir",
              ["replay", good_log, "--epoch", "2", "-q", "--out", os.path.join(scratch, "empty_out")])
    c.control("log show: a valid filter with no rows", ["log", "show", good_log, "--type", "page-free"],
              "no records match")
    c.control("diff: no change", ["diff", good_log, "--from", "4", "--to", "4", "-q"], "no change")
    c.control("diff: a page by id", ["diff", good_log, "--from", "1", "--to", "5", "--page", "2", "-q"])
    c.control("diff: a page type", ["diff", good_log, "--from", "1", "--to", "5", "--type", "Pair", "-q"])
    for name, (cmd, has_json) in IR_COMMANDS.items():
        c.control(name + " --store FILE", cmd + ["--store", good_store])
        c.control(name + " --store DIR", cmd + ["--store", store_dir])
        c.control(name + " MMSB_IR_STORE=DIR", cmd, env={"MMSB_IR_STORE": store_dir})
    os.makedirs(os.path.join(scratch, "empty_out_2"))
    c.control("replay out into an existing empty dir",
              ["replay", good_log, "--epoch", "2", "-q", "--out", os.path.join(scratch, "empty_out_2")])

    # Every log command x every wrong input x its output modes.
    for kind, path in inputs.items():
        if kind in ("truncated store", "flipped store"):
            continue
        for name, (cmd, rest, has_json, has_salvage) in LOG_COMMANDS.items():
            if kind == "truncated log" and name not in TRUNCATED_LOG_QUESTIONS:
                continue
            variants = [[]]
            if has_json:
                variants.append(["--json"])
            if has_salvage:
                variants.append(["--salvage"])
            if has_json and has_salvage:
                variants.append(["--json", "--salvage"])
            for v in variants:
                json_out = "--json" in v and name == "log verify"
                c.case(kind, name + (" " + " ".join(v) if v else ""), cmd + [path] + rest + v,
                       os.path.basename(path), json_out=json_out)

    # The queries read a log directory's index: a checkpoint or segment file is not one.
    for name in ("history", "blame", "bisect", "touched", "why", "slice"):
        cmd, rest, has_json, _ = LOG_COMMANDS[name]
        for path in (ckpt, os.path.join(good_log, "00000001.seg")):
            c.case("log file, not a directory", name, cmd + [path] + rest, os.path.basename(path))

    # A checkpoint file answers its own epoch and no other.
    base = os.path.basename(ckpt)
    for v in ([], ["--json"], ["--salvage"]):
        for e in ("1", "2", "4", "5", "0"):
            c.case("checkpoint, other epoch", "replay " + " ".join(v), ["replay", ckpt, "--epoch", e, "-q"] + v,
                   base if e != "0" else "0")
        c.case("checkpoint, other epoch", "diff " + " ".join(v),
               ["diff", ckpt, "--from", "1", "--to", "3", "-q"] + v, "epoch 1")
        c.case("checkpoint, other epoch", "diff " + " ".join(v),
               ["diff", ckpt, "--from", "3", "--to", "5", "-q"] + v, "epoch 5")

    # Out-of-range and malformed values.
    top = "18446744073709551615"
    for flag_cmd in (["replay", good_log, "--epoch"],):
        for val in (top, "18446744073709551616", "-1", "abc", "1e3", "0x10", "", "latest~1"):
            c.case("out of range", "replay --epoch", flag_cmd + [val, "-q"], val or "--epoch")
    for val in ("6", "99", "18446744073709551614"):
        c.case("out of range", "replay --epoch", ["replay", good_log, "--epoch", val, "-q"], val)
        c.case("out of range", "replay --epoch --json", ["replay", good_log, "--epoch", val, "-q", "--json"], val)
    for flag in ("--from", "--to"):
        for val in (top, "latest", "-1", "abc", "99"):
            other = "--to" if flag == "--from" else "--from"
            c.case("out of range", "diff " + flag, ["diff", good_log, flag, val, other, "2", "-q"], val)
    for val in ("999", "0", "abc", "-3", top + "0"):
        c.case("out of range", "diff --page", ["diff", good_log, "--from", "1", "--to", "5", "--page", val, "-q"], val)
    for val in ("nosuch", "pair", "Pair2"):
        c.case("out of range", "diff --type", ["diff", good_log, "--from", "1", "--to", "5", "--type", val, "-q"], val)
    for val in ("-1", "-100", "abc"):
        c.case("out of range", "diff --max-fields",
               ["diff", good_log, "--from", "1", "--to", "5", "--max-fields", val, "-q"], val)
    for sub in ("show",):
        for val in ("nosuch", "Delta", "unknown(", ""):
            c.case("out of range", "log show --type", ["log", sub, good_log, "--type", val], val or "--type")
        for val in ("-1", "-5", "abc"):
            c.case("out of range", "log show --limit", ["log", sub, good_log, "--limit", val], val)
        for flag in ("--from-epoch", "--to-epoch"):
            for val in (top, "-1", "x"):
                c.case("out of range", "log show " + flag, ["log", sub, good_log, flag, val], val)
        c.case("out of range", "log show --from-epoch", ["log", sub, good_log, "--from-epoch", "latest"], "latest")
        c.case("out of range", "log show --from-epoch", ["log", sub, good_log, "--from-epoch", "99"], "99")
    for gen in ("99", "latest~", "latest~x", "latest~9", "-1", "nosuchlabel"):
        c.case("out of range", "ir functions --gen", ["ir", "functions", "--gen", gen, "--store", good_store], gen)
        c.case("out of range", "ir show --gen", ["ir", "show", "foo", "--gen", gen, "--store", good_store], gen)
        c.case("out of range", "ir diff A", ["ir", "diff", gen, "2", "--store", good_store], gen)
    for val in ("mid", "POST", ""):
        c.case("out of range", "ir show --stage", ["ir", "show", "foo", "--gen", "1", "--stage", val, "--store", good_store], val or "--stage")
        c.case("out of range", "ir diff --stage", ["ir", "diff", "--stage", val, "--store", good_store], val or "--stage")
        c.case("out of range", "ir history --stage", ["ir", "history", "foo", "--stage", val, "--store", good_store], val or "--stage")
    c.case("out of range", "ir show --tu", ["ir", "show", "foo", "--gen", "1", "--tu", "nosuch.cc", "--store", good_store], "nosuch.cc")
    c.case("out of range", "ir history --tu", ["ir", "history", "foo", "--tu", "nosuch.cc", "--store", good_store], "nosuch.cc")
    c.case("out of range", "ir functions --tu", ["ir", "functions", "--gen", "1", "--tu", "nosuch.cc", "--store", good_store], "nosuch.cc")
    c.case("out of range", "ir show FUNC", ["ir", "show", "nosuchfn", "--gen", "1", "--store", good_store], "nosuchfn")
    c.case("out of range", "ir history FUNC", ["ir", "history", "nosuchfn", "--store", good_store], "nosuchfn")
    c.case("out of range", "ir diff --sort", ["ir", "diff", "--sort", "size", "--store", good_store], "size")
    for keep in ("0", "-1", "x"):
        c.case("out of range", "ir gc --keep", ["ir", "gc", "--keep", keep, "--store", good_store], keep)
    for t in ("-1", "x"):
        c.case("out of range", "ir gc --timeout", ["ir", "gc", "--keep", "1", "--timeout", t, "--store", good_store], t)
        c.case("out of range", "ir new-generation --timeout", ["ir", "new-generation", "--timeout", t, "--store", good_store], t)

    # The queries: epochs the log never reached, fields it does not have, bad counts.
    for name, flag in (("history", "--from"), ("history", "--to"), ("touched", "--from"),
                       ("touched", "--to"), ("bisect", "--from"), ("bisect", "--to"),
                       ("blame", "--at"), ("why", "--at")):
        cmd, rest, has_json, _ = LOG_COMMANDS[name]
        for val in ("6", "99", "18446744073709551614", top, "-1", "abc", "latest~1", ""):
            for v in ([], ["--json"]):
                c.case("out of range", f"{name} {flag}" + (" --json" if v else ""),
                       cmd + [good_log] + rest + [flag, val] + v, val or flag)
    for name in ("history", "blame", "touched", "why"):
        cmd, rest, has_json, _ = LOG_COMMANDS[name]
        for field in ("Nosuch.x", "Pair.zz", "Pair.a[3]", "Pair.a.b", "g_nosuch", "", "Pair[", "Pair.a[-1]"):
            c.case("out of range", f"{name} FIELD", cmd + [good_log, field] + rest[1:], field or "field")
    for name in ("history", "blame"):
        for val in ("-1", "-100", "abc"):
            c.case("out of range", f"{name} --max", [name, good_log, "Pair.a", "--max", val], val)
    for where in ("", "Pair.a==", "Nosuch.a==1", "Pair.zz==1", "Pair.a====3", "(Pair.a==3", "Pair.a==3)",
                  "Pair.a==abc", "Pair.a &&"):
        c.case("out of range", "bisect --where", ["bisect", good_log, "--where", where], where or "--where")
    for flag, val in (("--from", "99"), ("--to", "99"), ("--from", "abc"), ("--to", "-1"),
                      ("--from", top), ("--from", "latest~")):
        other = ["--to", "5"] if flag == "--from" else ["--from", "3"]
        c.case("out of range", "slice " + flag, ["slice", good_log, flag, val] + other + ["-o", "@OUT@"], val)
    for gen in ("99", "latest~9", "nosuchlabel"):
        c.case("out of range", "why --gen", ["why", good_log, "Pair.a", "--store", good_store, "--gen", gen], gen)
        c.case("out of range", "ir report A", ["ir", "report", gen, "2", "--store", good_store, "-o", "@OUTFILE@"], gen)
        c.case("out of range", "ir gate A", ["ir", "gate", gen, "2", "--budget", budget, "--store", good_store], gen)
    for val in ("0", "-1", "abc", "100001"):
        c.case("out of range", "report --columns", ["report", good_log, "--columns", val, "-o", "@OUTFILE@"], "--columns")
    for val in ("0", "-1", "abc"):
        c.case("out of range", "log compact --keep", ["log", "compact", compacted, "--keep", val], val)
    for val in ("0", "-1", "abc", "5x", "1.5h", "", "99999999999999d"):
        c.case("out of range", "log compact --max-age", ["log", "compact", compacted, "--max-age", val], val or "--max-age")
    for val in ("0", "-1", "abc", "1Q"):
        c.case("out of range", "log compact --max-bytes", ["log", "compact", compacted, "--max-bytes", val], val)
    # The gate's budget file: every kind of wrong file, and wrong JSON.
    def budget_file(name, text):
        path = os.path.join(scratch, name)
        with open(path, "w") as f:
            f.write(text)
        return path
    bad_budgets = {
        "missing": inputs["missing"], "directory": inputs["directory"], "empty": inputs["empty"],
        "random": inputs["random"], "elf": inputs["elf"], "sqlite": inputs["sqlite"],
        "gzip": inputs["gzip"], "text": inputs["text"],
        "unknown key": budget_file("typo.json", '{"topp": 5}'),
        "wrong type": budget_file("wrongtype.json", '{"top": "x"}'),
        "not an object": budget_file("array.json", "[1, 2]"),
        "bad regex": budget_file("regex.json", '{"unchanged": ["(("]}'),
        "out of range": budget_file("range.json", '{"top": -3}'),
        "truncated": budget_file("cut.json", '{"stage": "pre", "top": '),
    }
    for kind, path in bad_budgets.items():
        for v in ([], ["--json"]):
            c.case("gate budget: " + kind, "ir gate --budget" + (" --json" if v else ""),
                   ["ir", "gate", "1", "2", "--budget", path, "--store", good_store] + v,
                   os.path.basename(path))
    # follow: URLs that are not a stream, and local arguments checked before connecting.
    unreachable = "nats://127.0.0.1:9/stream"
    for url in ("", "http://host/stream", "nats://127.0.0.1:4222", "nats://", "/tmp/x.tlog", "nats://[::1/s"):
        c.case("out of range", "follow URL", ["follow", url], url or "URL")
    c.case("out of range", "follow --until", ["follow", unreachable, "--until", "abc"], "abc")
    c.case("out of range", "follow --until", ["follow", unreachable, "--until", "-2"], "-2")
    c.case("out of range", "follow --idle-exit", ["follow", unreachable, "--idle-exit", "-5"], "-5")
    c.case("out of range", "follow --idle-exit", ["follow", unreachable, "--idle-exit", "x"], "x")
    c.case("conflicting flags", "follow --out a file", ["follow", unreachable, "--out", inputs["text"]], "readme.txt")
    c.case("conflicting flags", "follow --serve no dir", ["follow", unreachable, "--serve", "/nonexistent/dir/s.sock"],
           "/nonexistent/dir")
    c.case("missing", "follow (no server)", ["follow", unreachable, "--idle-exit", "100"], unreachable)

    # Conflicting flags.
    c.case("conflicting flags", "replay --json --out", ["replay", good_log, "--epoch", "2", "--json", "--out", "@OUT@"], "--out")
    c.case("conflicting flags", "replay --with-bytes", ["replay", good_log, "--epoch", "2", "--with-bytes"], "--with-bytes")
    c.case("conflicting flags", "diff --page --type", ["diff", good_log, "--from", "1", "--to", "2", "--page", "1", "--type", "Pair"], "--type")
    c.case("conflicting flags", "log show from > to", ["log", "show", good_log, "--from-epoch", "4", "--to-epoch", "2"], "--to-epoch")
    busy = os.path.join(scratch, "busy_out")
    os.makedirs(busy)
    open(os.path.join(busy, "stale.bin"), "w").close()
    c.case("conflicting flags", "replay --out non-empty", ["replay", good_log, "--epoch", "2", "-q", "--out", busy], busy)
    c.case("conflicting flags", "replay --out a file", ["replay", good_log, "--epoch", "2", "-q", "--out", inputs["text"]], "readme.txt")
    for name in ("history", "touched", "bisect", "slice"):
        cmd, rest, has_json, _ = LOG_COMMANDS[name]
        rest = [a for a in rest if a not in ("--from", "--to", "3", "5")]
        c.case("conflicting flags", f"{name} from > to", cmd + [good_log] + rest + ["--from", "4", "--to", "2"], "--from 4")
    c.case("conflicting flags", "slice -o non-empty", ["slice", good_log, "--from", "3", "--to", "5", "-o", busy], busy)
    c.case("conflicting flags", "slice -o the log itself", ["slice", good_log, "--from", "3", "--to", "5", "-o", good_log],
           "good.tlog")
    c.case("conflicting flags", "slice -o a file", ["slice", good_log, "--from", "3", "--to", "5", "-o", inputs["text"]],
           "readme.txt")
    c.case("conflicting flags", "report -o a directory", ["report", good_log, "-o", busy], busy)
    c.case("conflicting flags", "ir report -o a directory", ["ir", "report", "1", "2", "--store", good_store, "-o", busy], busy)

    # Every IR command x every wrong store.
    for kind in ("missing", "directory", "empty", "random", "elf", "sqlite", "gzip", "text",
                 "truncated store", "flipped store"):
        path = inputs[kind]
        for name, (cmd, has_json) in IR_COMMANDS.items():
            if kind in CREATES_STORE.get(name, ()):
                continue
            for v in ([], ["--json"]) if has_json else ([],):
                c.case(kind, name + (" --json" if v else ""), cmd + ["--store", path] + v,
                       os.path.basename(path))
            if kind in ("missing", "random", "sqlite"):
                c.case(kind, name + " (MMSB_IR_STORE)", cmd, os.path.basename(path),
                       env={"MMSB_IR_STORE": path})

    if args.matrix:
        known = sorted({n.split(" --")[0] for n in LOG_COMMANDS} | set(IR_COMMANDS) |
                       {"follow", "replay", "diff", "log show", "log compact"}, key=len, reverse=True)
        def group(cmd):
            return next((k for k in known if cmd == k or cmd.startswith(k + " ")), cmd)
        cells = {}
        for kind, cmd, names, argv, rc, verdict, first in c.rows:
            cell = cells.setdefault((group(cmd), kind), [0, 0, 0])
            cell[0] += 1
            cell[1] += rc != 0
            cell[2] += verdict == "SILENT"
        print(f"{'command':<20} {'kind of wrong input':<26} cases non-zero silent")
        for (cmd, kind), (n, nz, sil) in sorted(cells.items()):
            print(f"{cmd:<20} {kind:<26} {n:>5} {nz:>8} {sil:>6}")

    total = len(c.rows)
    silent = sum(1 for r in c.rows if r[5] == "SILENT")
    bad = [r for r in c.rows if r[5] != "ok"]
    if args.table:
        print(f"{'input':<24} {'command':<34} {'rc':>3} {'verdict':<10} message")
        for kind, cmd, names, argv, rc, verdict, first in c.rows:
            print(f"{kind:<24} {cmd:<34} {rc:>3} {verdict:<10} {first[:110]}")
    by_kind = {}
    for r in c.rows:
        by_kind.setdefault(r[0], [0, 0])
        by_kind[r[0]][0] += 1
        by_kind[r[0]][1] += r[5] == "ok"
    print(f"{'kind of wrong input':<26} cases  clear")
    for k, (n, ok) in by_kind.items():
        print(f"{k:<26} {n:>5}  {ok:>5}")
    for kind, cmd, names, argv, rc, verdict, first in bad:
        print(f"FAIL [{verdict}] {kind}: mmsb {argv} (exit {rc}; must name '{names}'): {first}",
              file=sys.stderr)
    for f in c.controls_failed:
        print("CONTROL FAILED " + f, file=sys.stderr)
    print(f"{total} cases, {total - len(bad)} clear, {silent} silent wrong answers, "
          f"{len(c.controls_failed)} failed controls")
    if args.figures:
        print(f"FIGURE robustness.cli_cases {total} count")
        print(f"FIGURE robustness.silent_wrong_answers {silent} count")
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if not bad and not c.controls_failed and total >= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
