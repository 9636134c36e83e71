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

  // ---- Column diffs: deflated chunks, inflated on demand (DecompressionStream, no JS inflater) ----
  const chunkCache = new Map();
  async function inflate(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; ++i) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return JSON.parse(await new Response(stream).text());
  }
  function detailOf(c) {
    const k = cols[c] ? cols[c][5] : -1;
    if (k < 0) return Promise.resolve(null);
    if (!chunkCache.has(k)) chunkCache.set(k, inflate(D.chunks[k]));
    return chunkCache.get(k).then((chunk) => chunk[String(c)] || null);
  }

  // ---- What committed: sites, coloured by rank (most bytes first); the rest grey -----------
  const sites = D.sites;  // [label, kind, function, file, line, epochs, bytes]; 0: no provenance
  const palette = ["#2f6fdf", "#d9822b", "#2f9e63", "#8a4fd3", "#c23b73", "#1b9aaa", "#b8a000", "#6b4f2f"];
  const siteColor = new Map();
  sites.map((s, i) => [i, s]).filter(([i, s]) => i > 0 && s[5] > 0)
    .sort((a, b) => b[1][6] - a[1][6] || a[0] - b[0]).slice(0, palette.length)
    .forEach(([i], k) => siteColor.set(i, palette[k]));
  const colorOf = (site) => siteColor.get(site) || "#9aa0ac";
  const siteLabel = (site) => (sites[site] ? sites[site][0] : "(unknown)");

  document.getElementById("summary").textContent =
    D.epochs + " epochs (" + D.first_epoch + "\u2013" + D.last_epoch + "), " + D.total_pages +
    " pages, " + D.edges.length + " edges; " + ncols + " columns of " + D.width +
    (D.width === 1 ? " epoch" : " epochs");
  // The runs in the log and the build each was made from (run-start and build records).
  const runs = D.runs || [];
  if (runs.length) {
    const last = runs[runs.length - 1];
    const build = last[2] ? "build id " + last[2].slice(0, 16) + (last[3] ? " (" + last[3] + ")" : "") : "build not recorded";
    document.getElementById("summary").append(mmsb.el("div", { id: "runs", text: runs.length + " run(s); the last from epoch " + (last[0] + 1) + ", " + build +
      (D.ir ? "; IR store " + D.ir.store + ", generation " + D.ir.generation + " (" + D.ir.how + ")" : "") }));
  }

  // ---- Scrubber --------------------------------------------------------------------------
  let maxBytes = 1;
  for (const c of cols) maxBytes = Math.max(maxBytes, c[2]);
  const H = 80;
  // Aligned with the heatmap's columns below (same left margin, same column width).
  const scrub = mmsb.svg("svg", { width: LABEL + ncols * bw, height: H + 14, id: "scrubber-svg", tabindex: 0 });
  // One group per column; its segments stack the bytes of the sites that committed there
  // (the biggest at the bottom), a grey top for the sites beyond the embedded four.
  for (let i = 0; i < ncols; ++i) {
    if (cols[i][3] === 0) continue;
    const h = Math.max(1, Math.round((H - 4) * Math.sqrt(cols[i][2] / maxBytes)));
    const w = Math.max(1, bw - (bw > 3 ? 1 : 0));
    const g = mmsb.svg("g", { class: "bar", "data-c": i, "data-site": cols[i][4].length ? cols[i][4][0][0] : 0 });
    const segs = cols[i][4];
    const total = Math.max(1, cols[i][2]);
    let y = H, used = 0;
    for (const [site, bytes] of segs) {
      const sh = Math.min(h - used, Math.round(h * bytes / total));
      if (sh < 1) continue;
      y -= sh;
      used += sh;
      g.append(mmsb.svg("rect", { class: "seg", x: LABEL + i * bw, y, width: w, height: sh, fill: colorOf(site), "data-site": site }));
    }
    if (used < h) {
      // Rounding, or sites beyond the embedded ones (grey).
      const all = segs.reduce((a, x) => a + x[1], 0) === cols[i][2] && segs.length > 0;
      g.append(mmsb.svg("rect", { class: "seg", x: LABEL + i * bw, y: y - (h - used), width: w, height: h - used,
        fill: all ? colorOf(segs[0][0]) : "#9aa0ac", "data-site": all ? segs[0][0] : -1 }));
    }
    scrub.append(g);
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
  const scrubLegend = document.getElementById("scrubber-legend");
  for (const [site, color] of siteColor) {
    scrubLegend.append(mmsb.el("span", { class: "site", "data-site": site }, mmsb.el("i", { style: "background:" + color }),
      siteLabel(site) + " (" + sites[site][5] + " epochs)"));
  }
  if (sites[0][5] > 0 || sites.length > siteColor.size + 1) {
    scrubLegend.append(mmsb.el("span", { class: "site", "data-site": 0 }, mmsb.el("i", { style: "background:#9aa0ac" }),
      sites.length > 1 ? "other / no provenance" : "no provenance in the log"));
  }
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

  // What committed the column's epochs, with the IR store's word on each site when embedded.
  function committedBy(c) {
    const segs = cols[c][4];
    if (segs.length === 0) return [];
    const out = [mmsb.el("div", { class: "muted", text: "committed by:" })];
    for (const [site, bytes, epochs] of segs) {
      const row = mmsb.el("div", { class: "committed mono", "data-site": site }, mmsb.el("i", { class: "swatch", style: "background:" + colorOf(site) }),
        " " + siteLabel(site) + ": " + epochs + " epoch(s), " + mmsb.bytes(bytes));
      const ir = D.ir && D.ir.sites[site];
      if (ir) row.append(irNote(ir));
      out.push(row);
    }
    const shown = segs.reduce((a, x) => a + x[2], 0);
    if (shown < cols[c][3]) out.push(mmsb.el("div", { class: "muted", text: "  ... and " + (cols[c][3] - shown) + " epoch(s) by other sites" }));
    return out;
  }
  let selectSeq = 0;
  async function select(c) {
    if (c < 0 || c >= ncols) return;
    selected = c;
    const seq = ++selectSeq;
    marker.setAttribute("x", LABEL + c * bw);
    epochDetail.dataset.column = String(c);
    if (cols[c][3] === 0) {
      epochDetail.replaceChildren(mmsb.el("div", { class: "muted", text: "no epoch in this column" }));
      return;
    }
    const head = mmsb.el("div", {}, mmsb.el("b", { text: span(c) }), ": " + mmsb.bytes(cols[c][2]) + " changed");
    epochDetail.replaceChildren(head, ...committedBy(c), mmsb.el("div", { class: "muted", text: "loading\u2026" }));
    const d = await detailOf(c);
    if (seq !== selectSeq) return;  // another column was selected meanwhile
    if (!d) { epochDetail.replaceChildren(head, ...committedBy(c)); return; }
    const kids = [head, ...committedBy(c), mmsb.el("div", { class: "muted mono", text: diffCmd(d) }), ...pageLines(d, null)];
    if (d.pages.length === 0) kids.push(mmsb.el("div", { class: "muted", text: "no page differs across this column" }));
    if (d.more > 0) kids.push(mmsb.el("div", { class: "muted", text: "... " + d.more + " more page(s) changed: " + diffCmd(d) }));
    epochDetail.replaceChildren(...kids);
    epochDetail.dataset.loaded = String(c);
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
  // [column, changes, last epoch in the column that changed the row, its site]
  for (const [r, c, n, last, site] of D.cells) { cellsByRow[r].push([c, n, last, site]); maxN = Math.max(maxN, n); }
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
      for (const [c, n, lastEpoch, site] of cellsByRow[ri]) {
        const a = 0.15 + 0.85 * Math.log(n + 1) / Math.log(maxN + 1);
        const rect = mmsb.svg("rect", { class: "cell", x: LABEL + c * bw, y: y * RH + 1, width: Math.max(1, bw - (bw > 3 ? 1 : 0)),
          height: RH - 2, fill: "rgba(201,80,31," + a.toFixed(3) + ")", "data-r": ri, "data-c": c, "data-n": n });
        const tip = mmsb.svg("title");
        tip.textContent = r[0] + ", " + span(c) + ": " + n + " change(s), the last at epoch " + lastEpoch + " by " + siteLabel(site);
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
  // A clicked cell: blame (the row's last change in the column and what committed it) and
  // history (the row's changes in the columns around it, with values, from the column diffs).
  const HISTORY = 8;  // columns with changes shown on each side of the clicked one
  async function showCell(ri, c) {
    const r = rows[ri];
    const cells = cellsByRow[ri];
    const at = cells.findIndex((x) => x[0] === c);
    const hit = at >= 0 ? cells[at] : null;
    cellDetail.dataset.row = String(ri);
    cellDetail.dataset.column = String(c);
    for (const old of heat.querySelectorAll("rect.cell.sel")) old.classList.remove("sel");
    const rect = heat.querySelector('rect.cell[data-r="' + ri + '"][data-c="' + c + '"]');
    if (rect) rect.classList.add("sel");
    const selecting = select(c);
    const head = mmsb.el("div", {}, mmsb.el("b", { text: r[0] }), " in " + span(c) + ": " + (hit ? hit[1] : 0) + " change(s)");
    const key = r[1];
    const filter = key === "" ? null : (r[2] >= 0 ? (p) => p === key : (p) => collapse(p) === key);
    const kids = [head];
    if (hit) {
      kids.push(mmsb.el("div", { class: "blame" }, mmsb.el("b", { text: "blame: " }),
        "last changed at epoch " + hit[2] + " by ", mmsb.el("i", { class: "swatch", style: "background:" + colorOf(hit[3]) }),
        " " + siteLabel(hit[3])));
      const ir = D.ir && D.ir.sites[hit[3]];
      if (ir) kids.push(irNote(ir));
    }
    const lo = Math.max(0, (at >= 0 ? at : cells.findIndex((x) => x[0] > c)) - HISTORY);
    const hiBase = at >= 0 ? at + 1 : Math.max(0, cells.findIndex((x) => x[0] > c));
    const around = cells.slice(lo, Math.min(cells.length, hiBase + HISTORY));
    const details = await Promise.all(around.map((x) => detailOf(x[0])));
    await selecting;
    const hist = mmsb.el("div", { class: "history" }, mmsb.el("b", { text: "history" }),
      " (" + (cells.length > around.length ? around.length + " of " + cells.length + " columns that changed it; all: mmsb history " + D.log + " " + (key || r[0]) : "every change in this report") + ")");
    around.forEach((x, i) => {
      const d = details[i];
      const entry = mmsb.el("div", { class: "hist" + (x[0] === c ? " sel" : ""), "data-c": x[0], "data-epoch": x[2] },
        mmsb.el("span", { class: "mono", text: span(x[0]) + ", " + x[1] + " change(s), last by " + siteLabel(x[3]) }));
      const lines = d ? pageLines(d, filter) : [];
      if (d && lines.length === 0) entry.append(mmsb.el("div", { class: "muted", text: "  (values not in the embedded detail; " + diffCmd(d) + ")" }));
      entry.append(...lines);
      hist.append(entry);
    });
    kids.push(hist);
    cellDetail.replaceChildren(...kids);
    cellDetail.dataset.loaded = ri + "," + c;
  }
  // The IR store's word on a site (mmsb report --store): the function's IR in the run's
  // generation, whether it changed since the one before, and a link into ir.html.
  function irNote(ir) {
    const [fn, mangled, instructions, status, changedIn] = ir;
    const span2 = mmsb.el("span", { class: "ir-note ir-" + status, "data-status": status },
      " \u2014 IR: " + fn + ", " + (status === "absent" ? "not in the IR store"
        : instructions + " instructions in generation " + D.ir.generation + ", " +
          (status === "changed" ? "changed since generation " + D.ir.previous
            : status === "added" ? "new in it" : "unchanged since generation " + D.ir.previous)) +
      (changedIn.length ? "; changed in generations " + changedIn.join(", ") : "") + " ");
    if (mangled) span2.append(mmsb.el("a", { href: D.ir.link + "#fn-" + mangled, text: "ir report" }));
    return span2;
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
  (async () => {
    let last = -1;
    for (let c = ncols - 1; c >= 0; --c) if (cols[c][3] > 0) { last = c; break; }
    const first = select(last);
    for (const [what, a] of mmsb.tests()) {
      if (what === "epoch") await select(Number(a[0]));
      else if (what === "expand") toggle(Number(a[0]));
      else if (what === "click") {
        const ri = Number(a[0]);
        if (rows[ri] && rows[ri][2] >= 0 && !expanded.has(rows[ri][2])) toggle(rows[ri][2]);
        await showCell(ri, Number(a[1]));
      } else if (what === "key") {
        for (let i = 0; i < Number(a[1] || 1); ++i) document.dispatchEvent(new KeyboardEvent("keydown", { key: a[0] }));
      }
    }
    await first;
    if (selected >= 0) await select(selected);
    document.body.dataset.ready = "1";
  })();
})();
