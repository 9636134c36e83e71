// Shared by the reports: error accounting (tests read body[data-errors]), small DOM helpers and
// the ?test=... hooks that let a headless browser drive clicks and read the result from the DOM.
"use strict";
(function () {
  const errors = [];
  function note(msg) {
    errors.push(String(msg));
    if (document.body) {
      document.body.dataset.errors = String(errors.length);
      let box = document.getElementById("errors");
      if (!box) {
        box = document.createElement("pre");
        box.id = "errors";
        document.body.prepend(box);
      }
      box.textContent = errors.join("\n");
    }
  }
  window.addEventListener("error", (e) => note("error: " + e.message + " at " + e.lineno));
  window.addEventListener("unhandledrejection", (e) => note("rejection: " + e.reason));
  const consoleError = console.error.bind(console);
  console.error = (...a) => { note(a.join(" ")); consoleError(...a); };
})();

const mmsb = {
  SVG: "http://www.w3.org/2000/svg",
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  },
  svg(tag, attrs) {
    const e = document.createElementNS(mmsb.SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  },
  data() { return JSON.parse(document.getElementById("mmsb-data").textContent); },
  bytes(n) {
    if (n < 1024) return n + " B";
    const u = ["KiB", "MiB", "GiB", "TiB"];
    let i = -1;
    do { n /= 1024; ++i; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + " " + u[i];
  },
  // ?test=click:3,7;epoch:2 -> [["click", ["3","7"]], ["epoch", ["2"]]]
  tests() {
    const t = new URLSearchParams(location.search).get("test");
    if (!t) return [];
    return t.split(";").filter(Boolean).map((s) => {
      const i = s.indexOf(":");
      return i < 0 ? [s, []] : [s.slice(0, i), s.slice(i + 1).split(",")];
    });
  },
  // Sortable table: columns [{title, key, num}] over rows of objects; cells via render(row, key).
  table(columns, rows, render, sortKey, desc) {
    const t = mmsb.el("table");
    const head = mmsb.el("tr");
    const body = mmsb.el("tbody");
    let key = sortKey, down = desc;
    function draw() {
      const sorted = rows.slice().sort((a, b) => {
        const x = a[key], y = b[key];
        const c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
        return down ? -c : c;
      });
      body.replaceChildren(...sorted.map((r) => mmsb.el("tr", {}, ...columns.map((c) =>
        mmsb.el("td", c.num ? { style: "text-align:right" } : {}, render(r, c.key))))));
    }
    for (const c of columns) {
      head.append(mmsb.el("th", { text: c.title, "data-key": c.key, onclick: () => {
        if (key === c.key) down = !down; else { key = c.key; down = !!c.num; }
        draw();
      } }));
    }
    t.append(mmsb.el("thead", {}, head), body);
    draw();
    return t;
  },
};
