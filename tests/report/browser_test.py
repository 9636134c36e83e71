#!/usr/bin/env python3
"""Opens `mmsb report` and `mmsb ir report` pages in headless Chromium, network off, as a person
would: no console errors, the views render the expected number of bars, cells, edges and
treemap rectangles, and a click on a heatmap cell shows the same values `mmsb diff` prints.
Clicks are driven through the pages' ?test= hooks and read back with --dump-dom. Screenshots of
each page go to --out for a reviewer. Exit 77 (ctest: skipped) when Chromium is not installed.

Also usable by bench/run: --open-ms FILE prints how long the page took to draw its scrubber.
"""
import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAILED: " + what)
    return cond


def chromium_cmd(chromium, profile):
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=" + profile]


def run_chromium(chromium, url, extra):
    profile = tempfile.mkdtemp(prefix="mmsb-chromium-")
    try:
        p = subprocess.run(chromium_cmd(chromium, profile) + extra + [url], capture_output=True,
                           text=True, timeout=120)
        return p.stdout, p.stderr
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(chromium, url, settle=True):
    # The report inflates column diffs asynchronously (DecompressionStream): a virtual-time
    # budget lets those tasks finish before the DOM is dumped (the page marks body[data-ready]).
    extra = ["--virtual-time-budget=20000"] if settle else []
    dom, err = run_chromium(chromium, url, extra + ["--dump-dom"])
    console = [l for l in err.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    return dom, console


def screenshot(chromium, url, path, size):
    run_chromium(chromium, url, ["--virtual-time-budget=20000", "--screenshot=" + path, "--window-size=" + size,
                                 "--hide-scrollbars"])
    check(os.path.exists(path) and os.path.getsize(path) > 1000, "screenshot " + path)


def body_attr(dom, name):
    m = re.search(r"<body[^>]*\s" + name + r'="([^"]*)"', dom)
    return m.group(1) if m else None


def element(dom, ident):
    """The text of the element with id `ident` (tags stripped, entities decoded)."""
    m = re.search(r'<div id="' + ident + r'"[^>]*>(.*?)</div>\s*</section>', dom, re.S)
    if not m:
        m = re.search(r'id="' + ident + r'"[^>]*>(.*)', dom, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))) if m else ""


def embedded(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="mmsb-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def page_ok(dom, console, what):
    check(body_attr(dom, "data-ready") == "1", what + ": the page finished drawing")
    check(body_attr(dom, "data-errors") == "0", what + ": 0 errors (" + element(dom, "errors") + ")")
    check(not console, what + ": no console messages: " + "; ".join(console))


def log_report(a, out):
    log = os.path.join(out, "run.tlog")
    shutil.rmtree(log, ignore_errors=True)
    subprocess.run([a.fixture, "log", log, "60", "6"], check=True)
    page = os.path.join(out, "report.html")
    subprocess.run([a.mmsb, "report", log, "-o", page], check=True)
    data = embedded(page)
    rows = [r[0] for r in data["rows"]]
    col = 42 - data["first_epoch"]
    child = rows.index("Particles.x[42]")
    parent = data["rows"][child][2]
    url = "file://" + page

    # The values `mmsb diff` prints for g_particles between epochs 41 and 42.
    diff = subprocess.run([a.mmsb, "diff", log, "--from", "41", "--to", "42"], check=True,
                          capture_output=True, text=True).stdout
    want = re.search(r"^  (Particles\.x\[42\]: .* -> .*)$", diff, re.M).group(1)

    # x[42] changed at epoch 6 (page p2: x[(6 * 7) % 64] += 1) and at 42 (g_particles, mirror).
    diff6 = subprocess.run([a.mmsb, "diff", log, "--from", "5", "--to", "6"], check=True,
                           capture_output=True, text=True).stdout
    want6 = re.search(r"^  (Particles\.x\[42\]: .* -> .*)$", diff6, re.M).group(1)

    dom, console = dump_dom(a.chromium, url + "?test=click:%d,%d" % (child, col))
    page_ok(dom, console, "report.html")
    bars = len(re.findall(r'<g class="bar"', dom))
    check(bars == sum(1 for c in data["columns"] if c[3] > 0),
          "one scrubber bar per epoch column (%d)" % bars)
    # Bars are coloured by what committed them: FixtureStep (a transaction) for epochs not
    # divisible by 5, WriteFixtureLog's commit() call for the others; the legend names both.
    sites = {s[0]: i for i, s in enumerate(data["sites"])}
    step = [i for l, i in sites.items() if "FixtureStep" in l]
    call = [i for l, i in sites.items() if "WriteFixtureLog" in l]
    check(len(step) == 1 and len(call) == 1, "two commit sites: %s" % list(sites))
    if step and call:
        bar_site = dict((int(c), int(s)) for c, s in
                        re.findall(r'<g class="bar" data-c="(\d+)" data-site="(-?\d+)"', dom))
        for c in (40 - data["first_epoch"], 41 - data["first_epoch"]):
            e = data["columns"][c][0]
            check(bar_site.get(c) == (call[0] if e % 5 == 0 else step[0]),
                  "the bar of epoch %d has the colour of its committer (%s)" % (e, bar_site.get(c)))
        fills = set(re.findall(r'<rect class="seg"[^>]*fill="(#[0-9a-f]+)"[^>]*data-site="%d"' % step[0], dom))
        fills2 = set(re.findall(r'<rect class="seg"[^>]*fill="(#[0-9a-f]+)"[^>]*data-site="%d"' % call[0], dom))
        check(len(fills) == 1 and len(fills2) == 1 and fills != fills2,
              "each site has its own colour: %s %s" % (fills, fills2))
        legend = element(dom, "scrubber-legend")
        check("FixtureStep" in legend and "WriteFixtureLog" in legend,
              "the legend names the commit sites: %r" % legend[:300])
    visible = [i for i, r in enumerate(data["rows"]) if r[2] < 0 or r[2] == parent]
    want_cells = sum(1 for c in data["cells"] if c[0] in visible)
    cells = len(re.findall(r'<rect class="cell[ "]', dom))
    check('<rect class="cell sel"' in dom, "the clicked cell is highlighted")
    check(cells == want_cells, "heatmap cells of the visible rows: %d, expected %d" % (cells, want_cells))
    detail = element(dom, "cell-detail")
    check(want in detail, "the clicked cell shows '%s' (as mmsb diff prints it): %r" % (want, detail[:400]))
    check(re.search(r"blame: last changed at epoch 42 by .*FixtureStep", detail) is not None,
          "the clicked cell's blame names epoch 42 and its transaction: %r" % detail[:300])
    hist = re.findall(r'<div class="hist( sel)?" data-c="(\d+)" data-epoch="(\d+)"', dom)
    check([(h[0], h[2]) for h in hist] == [("", "6"), (" sel", "42")],
          "the history lists x[42]'s changes, epochs 6 and 42 (selected): %s" % hist)
    m6 = re.search(r'data-epoch="6">(.*?)<div class="hist', dom, re.S)
    check(m6 is not None and want6 in html.unescape(re.sub(r"<[^>]+>", "", m6.group(1))),
          "the history shows epoch 6's value change '%s'" % want6)
    check(re.search(r'id="cell-detail"[^>]*data-row="%d"' % child, dom) is not None or
          ('data-row="%d"' % child) in dom, "the clicked cell is recorded on the detail panel")
    edges = re.findall(r'<line class="edge"[^>]*data-kind="(\w+)"', dom)
    check(sorted(edges) == ["passthrough", "projection", "user"], "graph edges by kind: %s" % edges)

    # The keyboard moves through epochs.
    dom, console = dump_dom(a.chromium, url + "?test=epoch:10;key:ArrowRight,3;key:ArrowLeft,1")
    page_ok(dom, console, "report.html (keys)")
    m = re.search(r'id="epoch-detail"[^>]*data-column="(\d+)"', dom)
    check(m is not None and m.group(1) == "12", "→ three times, ← once from column 10 is column 12")
    check("epoch %d" % (data["columns"][12][0]) in element(dom, "epoch-detail"),
          "the epoch detail names its epoch")

    screenshot(a.chromium, url + "?test=epoch:%d" % col, os.path.join(out, "report.png"),
               "1280,1100")
    screenshot(a.chromium, url + "?test=click:%d,%d" % (child, col),
               os.path.join(out, "report-cell.png"), "1280,1900")


def ir_report(a, out):
    db = os.path.join(out, "ir.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    subprocess.run([a.fixture, "ir", db, "600"], check=True)
    page = os.path.join(out, "ir.html")
    subprocess.run([a.mmsb, "ir", "report", "1", "2", "--store", db, "-o", page], check=True)
    data = embedded(page)
    grown = [f for f in data["functions"] if f[7] == "changed"]
    target = max(grown, key=lambda f: f[8])
    url = "file://" + page
    dom, console = dump_dom(a.chromium, url + "?test=show:" + target[10] + ";sort:growth")
    page_ok(dom, console, "ir.html")
    rects = len(re.findall(r'<rect class="fn', dom))
    check(rects == len(data["functions"]), "one treemap rectangle per function (%d)" % rects)
    writers = len(re.findall(r'<rect class="fn writer"', dom))
    check(writers == sum(1 for f in data["functions"] if f[6]), "page writers are marked (%d)" % writers)
    detail = element(dom, "fn-detail")
    check(target[1] in detail and "+  %" in detail, "the clicked function shows its IR diff")
    renamed = sum(1 for f in data["functions"] if f[7] == "renamed")
    check(renamed == 6, "renames are renames, not add + remove (%d)" % renamed)
    screenshot(a.chromium, url + "?test=show:" + target[10], os.path.join(out, "ir.png"), "1280,1300")

    # The gate on the same store, with links into the report.
    budget = os.path.join(out, "budget.json")
    with open(budget, "w") as f:
        json.dump({"function_growth": 2, "top": 5}, f)
    g = subprocess.run([a.mmsb, "ir", "gate", "1", "2", "--store", db, "--budget", budget],
                       capture_output=True, text=True)
    check(g.returncode == 1, "the gate fails on growth over budget (exit %d)" % g.returncode)
    check("(ir.html#" + target[10] + ")" in g.stdout or "ir.html#fn-" in g.stdout,
          "the gate's summary links into ir.html")


def store_report(a, out):
    """`mmsb report --store`: each commit site's function as the IR store knows it."""
    log = os.path.join(out, "run.tlog")
    db = os.path.join(out, "ir.db")
    page = os.path.join(out, "report-store.html")
    p = subprocess.run([a.mmsb, "report", log, "--store", db, "-o", page], check=True,
                       capture_output=True, text=True)
    check("generation 2" in p.stdout, "the report names the generation it used: %r" % p.stdout)
    data = embedded(page)
    rows = [r[0] for r in data["rows"]]
    child = rows.index("Particles.x[42]")
    col = 42 - data["first_epoch"]
    dom, console = dump_dom(a.chromium, "file://" + page + "?test=click:%d,%d" % (child, col))
    page_ok(dom, console, "report-store.html")
    detail = element(dom, "cell-detail")
    check(re.search(r"IR: mmsb::testing::FixtureStep, 10 instructions in generation 2, changed since generation 1",
                    detail) is not None, "the blame's transaction shows its IR change: %r" % detail[:500])
    runs = re.search(r'<div id="runs">([^<]*)</div>', dom)
    check(runs is not None and "1 run(s)" in runs.group(1) and "build id " in runs.group(1) and
          "generation 2 (latest" in runs.group(1),
          "the header names the run's build and the generation used: %r" % (runs and runs.group(1)))
    check('href="ir.html#fn-_ZN4mmsb7testing11FixtureStepEv"' in dom,
          "the site links to its function in ir.html")
    # Epoch 40 was committed by WriteFixtureLog's commit() call, which the store does not hold.
    dom, console = dump_dom(a.chromium, "file://" + page + "?test=epoch:%d" % (40 - data["first_epoch"]))
    page_ok(dom, console, "report-store.html (epoch 40)")
    epoch = element(dom, "epoch-detail")
    check(re.search(r"WriteFixtureLog.*: 1 epoch\(s\).*not in the IR store", epoch) is not None,
          "a site the store does not know says so: %r" % epoch[:500])
    screenshot(a.chromium, "file://" + page + "?test=click:%d,%d" % (child, col),
               os.path.join(out, "report-store.png"), "1280,1900")


def open_ms(a, out, page):
    # No virtual time here: the figure is the page's own wall clock up to the scrubber's drawing,
    # which happens before anything is inflated.
    dom, console = dump_dom(a.chromium, "file://" + os.path.abspath(page), settle=False)
    check(body_attr(dom, "data-errors") == "0", page + ": 0 errors")
    check(not console, page + ": no console messages: " + "; ".join(console))
    ms = body_attr(dom, "data-scrubber-ms")
    print("FIGURE report.open_ms %s ms" % ms)
    return 0 if ms is not None and not FAILURES else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmsb", required=True)
    ap.add_argument("--fixture")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default="")
    ap.add_argument("--open-ms", help="only measure how long this report takes to draw")
    a = ap.parse_args()
    a.chromium = a.chromium or shutil.which("chromium") or ""
    if not a.chromium or not os.access(a.chromium, os.X_OK):
        print("SKIPPED: chromium not found (Debian's chromium package; scripts/dev installs it)")
        return 77
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    if a.open_ms:
        return open_ms(a, a.out, a.open_ms)
    log_report(a, a.out)
    ir_report(a, a.out)
    store_report(a, a.out)
    print("screenshots: %s/report.png %s/report-cell.png %s/ir.png" % (a.out, a.out, a.out))
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all browser checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
