// mmsb ir report: treemap of a build's functions coloured by change, per-function IR diffs
// (pre and post side by side), sparklines and a sortable table. Data: report/src/ir_report.cc.
"use strict";
(function () {
  const D = mmsb.data();
  // [name, demangled, tu, pre, post, tus, pages, kind, delta, old_name, anchor, trend]
  const F = D.functions.map((f) => ({ name: f[0], dem: f[1], tu: f[2], pre: f[3], post: f[4], tus: f[5],
    pages: f[6], kind: f[7], delta: f[8], old: f[9], anchor: f[10], trend: f[11] }));
  const changed = F.filter((f) => f.kind !== "").length;
  document.getElementById("summary").textContent = "generations " + D.from + " \u2192 " + D.to + ": " +
    F.length + " functions shown, " + changed + " changed, " + D.removed.length + " removed" +
    (D.rest[0] ? "; " + D.rest[0] + " small unchanged functions (" + D.rest[1] + " instructions) not drawn" : "") +
    ". Store: " + D.store;

  function color(f) {
    if (f.kind === "") return "#cfd5df";
    if (f.kind === "added") return "#7b5cd6";
    if (f.kind.startsWith("renamed") || f.kind.startsWith("moved")) return f.delta === 0 ? "#5bb5c9" : "#2b8fa6";
    if (f.delta > 0) return "rgb(220," + Math.max(40, 120 - 6 * f.delta) + ",50)";
    if (f.delta < 0) return "rgb(50," + Math.max(110, 170 + 6 * f.delta) + ",80)";
    return "#e0b44a";
  }
  const legend = document.getElementById("legend");
  for (const [c, t] of [["#cfd5df", "unchanged"], ["#dc6a3c", "grew"], ["#3c9a5a", "shrank"], ["#e0b44a", "changed, same size"],
                        ["#7b5cd6", "added"], ["#2b8fa6", "renamed / moved"]]) {
    legend.append(mmsb.el("span", {}, mmsb.el("i", { style: "background:" + c }), t));
  }
  legend.append(mmsb.el("span", {}, mmsb.el("i", { style: "border:2px solid #111" }), "writes a page"));

  // Squarified treemap (Bruls, Huizing, van Wijk 2000).
  function squarify(items, x, y, w, h, out) {
    let rest = items.slice();
    while (rest.length) {
      const total = rest.reduce((s, i) => s + i.v, 0);
      if (total <= 0) break;
      const short = Math.min(w, h);
      const scale = (w * h) / total;
      let row = [], best = Infinity;
      for (const it of rest) {
        const cand = row.concat([it]);
        const sum = cand.reduce((s, i) => s + i.v * scale, 0);
        const side = sum / short;
        let worst = 0;
        for (const c of cand) { const a = c.v * scale, l = a / side; worst = Math.max(worst, Math.max(l / side, side / l)); }
        if (worst > best) break;
        best = worst; row = cand;
      }
      const sum = row.reduce((s, i) => s + i.v * scale, 0);
      const side = sum / short;
      let off = 0;
      for (const it of row) {
        const len = (it.v * scale) / side;
        if (w >= h) out.push([it, x, y + off, side, len]); else out.push([it, x + off, y, len, side]);
        off += len;
      }
      if (w >= h) { x += side; w -= side; } else { y += side; h -= side; }
      rest = rest.slice(row.length);
    }
    return out;
  }
  const W = 1100, H = 520;
  const items = F.map((f) => ({ f, v: Math.max(1, f.pre || f.post) })).sort((a, b) => b.v - a.v);
  const svg = mmsb.svg("svg", { width: W, height: H, id: "treemap-svg" });
  for (const [it, x, y, w, h] of squarify(items, 0, 0, W, H, [])) {
    const f = it.f;
    const g = mmsb.svg("g", {});
    const r = mmsb.svg("rect", { class: "fn" + (f.pages.length ? " writer" : ""), x: x + 0.5, y: y + 0.5,
      width: Math.max(0, w - 1), height: Math.max(0, h - 1), fill: color(f), stroke: f.pages.length ? "#111" : "#fff",
      "stroke-width": f.pages.length ? 2 : 1, "data-anchor": f.anchor, "data-kind": f.kind || "unchanged" });
    const tip = mmsb.svg("title");
    tip.textContent = f.dem + "\n" + f.pre + " instructions (pre), " + f.post + " (post), " + f.tus + " TU(s)" +
      (f.kind ? "\n" + f.kind + " " + (f.delta > 0 ? "+" : "") + f.delta : "") + (f.pages.length ? "\nwrites " + f.pages.join(", ") : "");
    r.append(tip);
    g.append(r);
    if (w > 60 && h > 14) {
      const t = mmsb.svg("text", { x: x + 4, y: y + 12, "pointer-events": "none" });
      const label = f.dem.replace(/\(.*$/, "");
      t.textContent = label.length * 6 > w - 8 ? label.slice(0, Math.max(1, Math.floor((w - 8) / 6) - 1)) + "\u2026" : label;
      g.append(t);
    }
    g.addEventListener("click", () => show(f, true));
    svg.append(g);
  }
  document.getElementById("treemap").append(svg);
  document.body.dataset.treemapMs = performance.now().toFixed(0);

  const detail = document.getElementById("fn-detail");
  function diffBlock(title, text) {
    const pre = mmsb.el("pre", { class: "diff" });
    if (!text) pre.append(mmsb.el("span", { class: "muted", text: "(no change at this stage)" }));
    else for (const line of text.split("\n")) {
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
      pre.append(mmsb.el("span", cls ? { class: cls, text: line + "\n" } : { text: line + "\n" }));
    }
    return mmsb.el("div", {}, mmsb.el("b", { text: title }), pre);
  }
  function show(f, fromUser) {
    detail.dataset.anchor = f.anchor;
    const d = D.diffs[f.name] || {};
    const head = mmsb.el("div", {}, mmsb.el("b", { class: "mono", text: f.dem }),
      " \u2014 " + (f.kind || "unchanged") + (f.old ? " (was " + f.old + ")" : "") + "; " + f.pre + " instructions pre, " +
      f.post + " post; " + f.tus + " TU(s): " + f.tu + (f.pages.length ? "; writes " + f.pages.join(", ") : ""));
    detail.replaceChildren(head, mmsb.el("div", { class: "side" }, diffBlock("pre", d.pre), diffBlock("post", d.post)));
    // Only a click rewrites the address (a deep link or a test hook must not scroll the page).
    if (fromUser && location.hash !== "#" + f.anchor) history.replaceState(null, "", "#" + f.anchor);
  }

  const byAnchor = new Map(F.map((f) => [f.anchor, f]));

  // Table with sparklines.
  function spark(t) {
    const s = mmsb.svg("svg", { width: 90, height: 18, class: "spark" });
    const vals = (t || []).map((v, i) => [i, v]).filter((p) => p[1] !== null);
    if (vals.length < 1) return s;
    const max = Math.max(...vals.map((p) => p[1])), min = Math.min(...vals.map((p) => p[1]));
    const n = Math.max(1, (t.length - 1));
    const pts = vals.map(([i, v]) => (2 + (i / n) * 86).toFixed(1) + "," + (16 - (max === min ? 7 : (14 * (v - min)) / (max - min))).toFixed(1));
    s.append(mmsb.svg("polyline", { points: pts.join(" "), fill: "none", stroke: "#2f6fdf", "stroke-width": 1.3 }));
    return s;
  }
  const rows = F.slice(0, 1500).map((f) => ({ f, name: f.dem, kind: f.kind || "unchanged", tus: f.tus,
    before: f.pre - f.delta, after: f.pre, growth: f.delta, post: f.post, pages: f.pages.join(", ") }));
  const table = mmsb.table(
    [{ title: "function", key: "name" }, { title: "change", key: "kind" }, { title: "TUs", key: "tus", num: true },
     { title: "before", key: "before", num: true }, { title: "after", key: "after", num: true },
     { title: "growth", key: "growth", num: true }, { title: "post", key: "post", num: true },
     { title: "writes", key: "pages" }, { title: "trend", key: "growth", num: true }],
    rows, (r, k) => {
      if (k === "name") {
        const a = mmsb.el("a", { href: "#" + r.f.anchor, id: r.f.anchor, class: "mono", text: r.name });
        a.addEventListener("click", () => show(r.f, true));
        return a;
      }
      if (k === "growth") return String(r.growth > 0 ? "+" + r.growth : r.growth);
      return String(r[k]);
    }, "growth", true);
  table.id = "fn-table";
  // The last column draws the sparkline (same sort key as growth).
  const fill = () => {
    for (const tr of table.querySelectorAll("tbody tr")) {
      const a = tr.querySelector("a");
      const f = byAnchor.get(a.id);
      const last = tr.lastElementChild;
      last.replaceChildren(spark(f.trend));
    }
  };
  table.querySelector("thead").addEventListener("click", () => setTimeout(fill, 0));
  fill();
  document.getElementById("functions").append(table);

  // Deep links (#fn-...) from `mmsb ir gate` summaries, and test hooks.
  if (location.hash.startsWith("#fn-") && byAnchor.has(location.hash.slice(1))) show(byAnchor.get(location.hash.slice(1)));
  for (const [what, a] of mmsb.tests()) {
    if (what === "show" && byAnchor.has(a[0])) show(byAnchor.get(a[0]));
    if (what === "sort") document.querySelector('#fn-table th[data-key="' + a[0] + '"]').click();
  }
  document.body.dataset.ready = "1";
})();
