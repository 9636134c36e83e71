// mmsb report: the epoch scrubber, the field x epoch heatmap and the page graph of one log.
// Data: see BuildLogReport (report/src/log_report.cc) and docs/Reports.md.
"use strict";
(function () {
  const D = mmsb.data();
  const cols = D.columns;  // [first, last, bytes, epochs]
  const ncols = cols.length;
  const LABEL = 240;
  const bw = Math.max(1, Math.min(16, Math.floor((1180 - LABEL) / ncols)));
  const collapse = (p) => p.replace(/\[(\d+)\]/g, "[]");
  const span = (c) => (cols[c][0] === cols[c][1] ? "epoch " + cols[c][0]
    : "epochs " + cols[c][0] + "\u2013" + cols[c][1] + " (" + cols[c][3] + " epochs, net change)");
  const diffCmd = (d, extra) => "mmsb diff " + D.log + " --from " + d.from + " --to " + d.to + (extra || "");

  document.getElementById("summary").textContent =
    D.epochs + " epochs (" + D.first_epoch + "\u2013" + D.last_epoch + "), " + D.total_pages +
    " pages, " + D.edges.length + " edges; " + ncols + " columns of " + D.width +
    (D.width === 1 ? " epoch" : " epochs");

  // ---- Scrubber --------------------------------------------------------------------------
  let maxBytes = 1;
  for (const c of cols) maxBytes = Math.max(maxBytes, c[2]);
  const H = 80;
  // Aligned with the heatmap's columns below (same left margin, same column width).
  const scrub = mmsb.svg("svg", { width: LABEL + ncols * bw, height: H + 14, id: "scrubber-svg", tabindex: 0 });
  for (let i = 0; i < ncols; ++i) {
    if (cols[i][3] === 0) continue;
    const h = Math.max(1, Math.round((H - 4) * Math.sqrt(cols[i][2] / maxBytes)));
    scrub.append(mmsb.svg("rect", { class: "bar", x: LABEL + i * bw, y: H - h, width: Math.max(1, bw - (bw > 3 ? 1 : 0)),
      height: h, fill: "#2f6fdf", "data-c": i }));
  }
  const marker = mmsb.svg("rect", { class: "sel", x: LABEL, y: 0, width: Math.max(bw, 2), height: H,
    fill: "none", id: "scrub-marker" });
  scrub.append(marker);
  const axis = mmsb.svg("text", { x: LABEL, y: H + 12 });
  axis.textContent = String(D.first_epoch);
  const axis2 = mmsb.svg("text", { x: LABEL + ncols * bw, y: H + 12, "text-anchor": "end" });
  axis2.textContent = String(D.last_epoch);
  const caption = mmsb.svg("text", { x: 4, y: 14 });
  caption.textContent = "bytes changed per column";
  scrub.append(axis, axis2, caption);
  document.getElementById("scrubber").append(scrub);
  document.body.dataset.scrubberMs = performance.now().toFixed(0);

  const epochDetail = document.getElementById("epoch-detail");
  let selected = -1;

  function pageLines(d, filter) {
    const lines = [];
    for (const p of d.pages) {
      const [id, name, type, kind, bytes, fields, truncated] = p;
      const shown = fields.filter((f) => !filter || filter(f[0]));
      if (filter && shown.length === 0) continue;
      lines.push(mmsb.el("div", { class: "page" }, mmsb.el("b", { text: "page " + id + (name ? " " + name : "") }),
        " (" + (type || "raw") + "): " + kind + ", " + bytes + " byte(s)"));
      for (const [path, o, n] of shown) {
        lines.push(mmsb.el("div", { class: "field mono", "data-path": path }, "  " + path + ": ",
          mmsb.el("span", { class: "old", text: o }), " -> ", mmsb.el("span", { class: "new", text: n })));
      }
      if (truncated) lines.push(mmsb.el("div", { class: "muted mono", text: "  ... more fields: " + diffCmd(d, " --page " + id) }));
    }
    return lines;
  }

  function select(c) {
    if (c < 0 || c >= ncols) return;
    selected = c;
    marker.setAttribute("x", LABEL + c * bw);
    const d = D.details[c];
    epochDetail.dataset.column = String(c);
    if (!d) {
      epochDetail.replaceChildren(mmsb.el("div", { class: "muted", text: "no epoch in this column" }));
      return;
    }
    const kids = [mmsb.el("div", {}, mmsb.el("b", { text: span(c) }), ": " + mmsb.bytes(cols[c][2]) + " changed"),
      mmsb.el("div", { class: "muted mono", text: diffCmd(d) }), ...pageLines(d, null)];
    if (d.pages.length === 0) kids.push(mmsb.el("div", { class: "muted", text: "no page differs across this column" }));
    if (d.more > 0) kids.push(mmsb.el("div", { class: "muted", text: "... " + d.more + " more page(s) changed: " + diffCmd(d) }));
    epochDetail.replaceChildren(...kids);
  }
  function step(dir) {
    for (let c = selected + dir; c >= 0 && c < ncols; c += dir) if (cols[c][3] > 0) return select(c);
  }
  scrub.addEventListener("click", (e) => {
    const r = scrub.getBoundingClientRect();
    const c = Math.floor((e.clientX - r.left - LABEL) / bw);
    if (c >= 0 && c < ncols && cols[c][3] > 0) select(c);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") { step(-1); e.preventDefault(); }
    if (e.key === "ArrowRight") { step(1); e.preventDefault(); }
  });

  // ---- Heatmap ---------------------------------------------------------------------------
  const rows = D.rows;  // [label, key, parent]
  const children = rows.map(() => []);
  rows.forEach((r, i) => { if (r[2] >= 0) children[r[2]].push(i); });
  const cellsByRow = rows.map(() => []);
  let maxN = 1;
  for (const [r, c, n] of D.cells) { cellsByRow[r].push([c, n]); maxN = Math.max(maxN, n); }
  const expanded = new Set();
  const heat = document.getElementById("heatmap");
  const cellDetail = document.getElementById("cell-detail");
  const RH = 14;

  function drawHeatmap() {
    const visible = [];
    rows.forEach((r, i) => {
      if (r[2] >= 0) return;
      visible.push(i);
      if (expanded.has(i)) visible.push(...children[i]);
    });
    const svg = mmsb.svg("svg", { width: LABEL + ncols * bw, height: Math.max(RH, visible.length * RH) + 2, id: "heatmap-svg" });
    visible.forEach((ri, y) => {
      const r = rows[ri];
      const label = mmsb.svg("text", { x: r[2] >= 0 ? 18 : 4, y: y * RH + 11, class: "row-label", "data-r": ri });
      const kids = children[ri].length;
      label.textContent = (kids ? (expanded.has(ri) ? "\u25be " : "\u25b8 ") : "") + r[0];
      if (kids) {
        label.style.cursor = "pointer";
        label.addEventListener("click", () => toggle(ri));
      }
      svg.append(label);
      for (const [c, n] of cellsByRow[ri]) {
        const a = 0.15 + 0.85 * Math.log(n + 1) / Math.log(maxN + 1);
        const rect = mmsb.svg("rect", { class: "cell", x: LABEL + c * bw, y: y * RH + 1, width: Math.max(1, bw - (bw > 3 ? 1 : 0)),
          height: RH - 2, fill: "rgba(201,80,31," + a.toFixed(3) + ")", "data-r": ri, "data-c": c, "data-n": n });
        const tip = mmsb.svg("title");
        tip.textContent = r[0] + ", " + span(c) + ": " + n + " change(s)";
        rect.append(tip);
        rect.addEventListener("click", () => showCell(ri, c));
        svg.append(rect);
      }
    });
    heat.replaceChildren(svg);
    heat.dataset.visibleRows = String(visible.length);
  }
  function toggle(ri) {
    if (expanded.has(ri)) expanded.delete(ri); else expanded.add(ri);
    drawHeatmap();
  }
  function showCell(ri, c) {
    const r = rows[ri];
    const d = D.details[c];
    const hit = cellsByRow[ri].find((x) => x[0] === c);
    cellDetail.dataset.row = String(ri);
    cellDetail.dataset.column = String(c);
    for (const old of heat.querySelectorAll("rect.cell.sel")) old.classList.remove("sel");
    const rect = heat.querySelector('rect.cell[data-r="' + ri + '"][data-c="' + c + '"]');
    if (rect) rect.classList.add("sel");
    select(c);
    const head = mmsb.el("div", {}, mmsb.el("b", { text: r[0] }), " in " + span(c) + ": " + (hit ? hit[1] : 0) + " change(s)");
    if (!d) { cellDetail.replaceChildren(head); return; }
    const key = r[1];
    const filter = key === "" ? null : (r[2] >= 0 ? (p) => p === key : (p) => collapse(p) === key);
    const lines = pageLines(d, filter);
    const kids = [head, ...lines];
    if (lines.length === 0) {
      kids.push(mmsb.el("div", { class: "muted", text: "not in the report's embedded detail (capped per column); " + diffCmd(d) }));
    }
    cellDetail.replaceChildren(...kids);
  }
  drawHeatmap();

  // ---- Pages and propagation ------------------------------------------------------------
  const kindColor = { user: "#8a4fd3", projection: "#d9822b", passthrough: "#2f9e63", unknown: "#888" };
  const legend = document.getElementById("graph-legend");
  for (const k of ["user", "projection", "passthrough"]) {
    legend.append(mmsb.el("span", {}, mmsb.el("i", { style: "background:" + kindColor[k] }), k));
  }
  const pages = D.pages;  // [id, label, type, size, changes, live, in_graph]
  const byId = new Map(pages.map((p) => [p[0], p]));
  const gnodes = pages.filter((p) => p[6]).slice(0, 300);
  const graph = document.getElementById("graph");
  if (gnodes.length === 0) {
    graph.append(mmsb.el("div", { class: "muted", text: "no propagation edges in this log" }));
  } else {
    const depth = new Map(gnodes.map((p) => [p[0], 0]));
    const E = D.edges.filter((e) => depth.has(e[0]) && depth.has(e[1]));
    for (let it = 0; it < gnodes.length; ++it) {
      let moved = false;
      for (const [a, b] of E) if (depth.get(b) < depth.get(a) + 1) { depth.set(b, depth.get(a) + 1); moved = true; }
      if (!moved) break;
    }
    const layers = [];
    for (const p of gnodes) (layers[depth.get(p[0])] = layers[depth.get(p[0])] || []).push(p);
    const pos = new Map();
    let maxRows = 0;
    layers.forEach((layer, x) => { (layer || []).forEach((p, y) => pos.set(p[0], [40 + x * 220, 24 + y * 34])); maxRows = Math.max(maxRows, (layer || []).length); });
    const svg = mmsb.svg("svg", { width: 80 + layers.length * 220, height: 40 + maxRows * 34, id: "graph-svg" });
    const defs = mmsb.svg("defs");
    for (const [k, col] of Object.entries(kindColor)) {
      const m = mmsb.svg("marker", { id: "arrow-" + k, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" });
      m.append(mmsb.svg("path", { d: "M0,0 L10,5 L0,10 z", fill: col }));
      defs.append(m);
    }
    svg.append(defs);
    for (const [a, b, kind] of E) {
      const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
      svg.append(mmsb.svg("line", { class: "edge", x1: x1 + 8, y1, x2: x2 - 10, y2, stroke: kindColor[kind] || "#888",
        "stroke-width": 1.6, "marker-end": "url(#arrow-" + (kindColor[kind] ? kind : "unknown") + ")", "data-kind": kind }));
    }
    for (const p of gnodes) {
      const [x, y] = pos.get(p[0]);
      const r = 4 + Math.log2(1 + p[4]);
      const c = mmsb.svg("circle", { class: "node", cx: x, cy: y, r: Math.min(r, 14), fill: p[5] ? "#2f6fdf" : "#aab", "data-id": p[0] });
      const t = mmsb.svg("title");
      t.textContent = p[1] + " (" + (p[2] || "raw") + "): " + p[4] + " change(s)";
      c.append(t);
      const label = mmsb.svg("text", { x: x + 16, y: y + 4 });
      label.textContent = p[1] + " \u00b7 " + p[4];
      svg.append(c, label);
    }
    graph.append(svg);
  }
  const table = mmsb.table(
    [{ title: "page", key: "id", num: true }, { title: "name", key: "label" }, { title: "type", key: "type" },
     { title: "bytes", key: "size", num: true }, { title: "changes (epochs)", key: "changes", num: true }],
    pages.slice(0, 200).map((p) => ({ id: p[0], label: p[1], type: p[2] || "raw", size: p[3], changes: p[4] })),
    (r, k) => String(r[k]), "changes", true);
  table.id = "pages";
  document.getElementById("pages-table").append(table);
  void byId;

  // ---- Start and test hooks ---------------------------------------------------------------
  for (let c = ncols - 1; c >= 0; --c) if (cols[c][3] > 0) { select(c); break; }
  for (const [what, a] of mmsb.tests()) {
    if (what === "epoch") select(Number(a[0]));
    else if (what === "expand") toggle(Number(a[0]));
    else if (what === "click") {
      const ri = Number(a[0]);
      if (rows[ri] && rows[ri][2] >= 0 && !expanded.has(rows[ri][2])) toggle(rows[ri][2]);
      showCell(ri, Number(a[1]));
    } else if (what === "key") {
      for (let i = 0; i < Number(a[1] || 1); ++i) document.dispatchEvent(new KeyboardEvent("keydown", { key: a[0] }));
    }
  }
  document.body.dataset.ready = "1";
})();
