"use strict";
// aligngpt-eval view: renders the embedded report data. Every piece of data reaches the page
// through text nodes, textContent or attribute setters, never as markup; only one page of
// sample cards exists in the DOM at a time, so 50,000 samples stay fast.
(function () {
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const RUNS = D.runs, TASKS = D.tasks, S = D.samples, TH = D.right_threshold;
  const MULTI = RUNS.length > 1;
  const BASE = D.baseline || 0;

  // ---------------------------------------------------------------- DOM helpers
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.appendChild(typeof kid === "object" ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }
  function fmt(v, isFloat) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") return isFloat || !Number.isInteger(v) ? v.toFixed(2) : String(v);
    if (typeof v === "boolean") return String(v);
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function signed(v) { return (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(2); }
  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) flatten(v, prefix + k + ".", out);
      else out.push([prefix + k, v]);
    }
    return out;
  }
  function kv(pairs) {
    const box = el("div", {class: "kv"});
    for (const [k, v] of pairs) { box.appendChild(el("span", {class: "k"}, k)); box.appendChild(el("span", {class: "mono"}, fmt(v))); }
    return box;
  }

  // ---------------------------------------------------------------- per-sample state
  // state[t][r][i]: 1 right, 0 wrong, -1 unscored, -2 question absent from run r
  const state = {};
  const offsets = [];
  let total = 0;
  for (const t of TASKS) {
    offsets.push(total);
    const n = S[t].qid.length;
    total += n;
    state[t] = S[t].runs.map(col => {
      const a = new Int8Array(n);
      for (let i = 0; i < n; i++) {
        const s = col.score[i];
        a[i] = (col.pred[i] === null && s === null && col.parsed[i] === null && col.weights[i] === null) ? -2
          : s === null ? -1 : s >= TH ? 1 : 0;
      }
      return a;
    });
  }
  const LABEL = {1: "right", 0: "wrong", "-1": "unscored", "-2": "absent"};

  // ---------------------------------------------------------------- header, notes, runs
  document.getElementById("title").textContent = MULTI
    ? "Comparison of " + RUNS.length + " runs" : "Run " + RUNS[0].label;
  document.title = document.getElementById("title").textContent + " · aligngpt report";
  document.getElementById("subtitle").textContent = TASKS.length + " task(s), " + total + " questions · right = score ≥ " + TH
    + (MULTI ? " · deltas against " + RUNS[BASE].label : "");
  if (D.notes.length) {
    const box = el("div", {class: "notes"});
    for (const n of D.notes) box.appendChild(el("div", {}, n));
    document.getElementById("notes").appendChild(box);
  }
  const runsBody = document.getElementById("runs-body");
  RUNS.forEach((r, ri) => {
    const m = r.model || {};
    const det = el("details", {class: "run"}, el("summary", {}, r.label + (ri === BASE && MULTI ? " (baseline)" : "")
      + " · model " + fmt(m.name) + " · align_mode " + fmt(m.align_mode) + " · " + r.run_name));
    det.appendChild(kv([["folder", r.run_dir], ["model", m.name], ["model path", m.path], ["align_mode", m.align_mode],
      ["dtype", m.dtype], ["vision weights", m.vision_weights_from]]));
    const tbl = el("table", {class: "fingerprints"}, el("tr", {}, el("th", {}, "task"), el("th", {}, "n"),
      el("th", {}, "protocol"), el("th", {}, "data source"), el("th", {}, "data fingerprint (sha256)")));
    for (const [t, res] of Object.entries(r.tasks)) {
      const data = res.data || {};
      tbl.appendChild(el("tr", {}, el("td", {}, t), el("td", {class: "num"}, fmt(res.n)), el("td", {}, fmt(res.protocol)),
        el("td", {}, fmt(data.source)), el("td", {class: "mono"}, fmt(data.fingerprint))));
    }
    det.appendChild(tbl);
    det.appendChild(el("h4", {}, "settings"));
    det.appendChild(kv(flatten(r.settings, "", [])));
    det.appendChild(el("h4", {}, "environment"));
    det.appendChild(kv(flatten(r.environment, "", [])));
    runsBody.appendChild(det);
  });

  // ---------------------------------------------------------------- metrics
  (function metrics() {
    const head = el("tr", {}, el("th", {}, "task"), el("th", {}, "metric"));
    RUNS.forEach((r, ri) => head.appendChild(el("th", {}, r.label + (MULTI && ri === BASE ? " (baseline)" : ""))));
    if (MULTI) RUNS.forEach((r, ri) => { if (ri !== BASE) head.appendChild(el("th", {}, "Δ " + r.label)); });
    const table = el("table", {id: "metrics-table"}, head);
    let empty = 0;
    for (const t of TASKS) {
      const info = D.task_info[t] || {};
      const keys = [];
      for (const r of RUNS) for (const [k] of flatten((r.tasks[t] || {}).metrics, "", [])) if (!keys.includes(k)) keys.push(k);
      keys.sort((a, b) => (b === info.headline) - (a === info.headline));
      keys.forEach((k, ki) => {
        const row = el("tr", {class: k === info.headline ? "headline" : null},
          el("td", {title: info.scoring || null}, ki === 0 ? (info.title || t) + " (" + t + ")" : ""),
          el("td", {}, k + (k === info.headline ? " ★" : "")));
        const vals = RUNS.map(r => { const f = flatten((r.tasks[t] || {}).metrics, "", []).find(p => p[0] === k); return f ? f[1] : undefined; });
        RUNS.forEach((r, ri) => {
          const v = vals[ri];
          const td = el("td", {class: "num metric", "data-run": ri, "data-task": t, "data-metric": k,
            "data-value": v === undefined ? null : JSON.stringify(v), title: v === undefined ? null : JSON.stringify(v)},
            fmt(v, ((r.tasks[t] || {}).float_metrics || []).includes(k)));
          const ci = ((r.tasks[t] || {}).ci || {})[k];
          if (ci && ci.low !== null && ci.high !== null)
            td.appendChild(el("span", {class: "ci"}, "CI [" + ci.low.toFixed(2) + ", " + ci.high.toFixed(2) + "]"));
          row.appendChild(td);
        });
        if (MULTI) RUNS.forEach((r, ri) => {
          if (ri === BASE) return;
          const td = el("td", {class: "num delta", "data-run": ri, "data-task": t, "data-metric": k});
          const pt = ((r.tasks[t] || {}).vs_baseline || {})[k];
          const a = vals[ri], b = vals[BASE];
          if (typeof a === "number" && typeof b === "number") {
            const d = pt && typeof pt.diff === "number" ? pt.diff : a - b;
            td.textContent = signed(d);
            td.className += d > 0 ? " pos" : d < 0 ? " neg" : "";
            td.setAttribute("data-value", JSON.stringify(d));
            if (pt && pt.ci_low !== null && pt.ci_high !== null)
              td.appendChild(el("span", {class: "ci"}, "CI [" + pt.ci_low.toFixed(2) + ", " + pt.ci_high.toFixed(2) + "] p=" + fmt(pt.p_value)));
          } else td.textContent = "—";
          row.appendChild(td);
        });
        if (vals.every(v => v === null || v === undefined)) { row.hidden = true; row.classList.add("no-value"); empty++; }
        table.appendChild(row);
      });
    }
    document.getElementById("metrics-body").appendChild(table);
    if (empty) {
      const toggle = el("button", {class: "link", id: "show-empty"}, "show " + empty + " metric(s) without a value in any run");
      toggle.addEventListener("click", () => {
        const rows = table.querySelectorAll("tr.no-value");
        const show = rows[0].hidden;
        rows.forEach(r => { r.hidden = !show; });
        toggle.textContent = (show ? "hide " : "show ") + empty + " metric(s) without a value in any run";
      });
      document.getElementById("metrics-body").appendChild(el("p", {class: "ci"}, toggle));
    }
    if (MULTI && !RUNS.some(r => Object.values(r.tasks).some(x => Object.keys(x.vs_baseline || {}).length)))
      document.getElementById("metrics-body").appendChild(el("p", {class: "ci"},
        "Δ = run − baseline. Bootstrap CIs and paired tests appear when the runs come from a grid folder (grid_results.json)."));
  })();

  // ---------------------------------------------------------------- filters
  const F = {task: "all", status: "all", statusRun: MULTI ? (BASE === 0 ? 1 : 0) : 0, type: "all", q: "",
             flip: "all", a: BASE, b: BASE === 0 ? Math.min(1, RUNS.length - 1) : 0, size: 50, page: 0};
  const filters = document.getElementById("filters");
  function select(id, label, options, value, onchange) {
    const s = el("select", {id: id});
    for (const [v, text] of options) s.appendChild(el("option", {value: v}, text));
    s.value = String(value);
    s.addEventListener("change", () => { onchange(s.value); F.page = 0; refilter(); });
    filters.appendChild(el("label", {}, label, s));
    return s;
  }
  const runOpts = RUNS.map((r, i) => [String(i), r.label]);
  select("f-task", "task", [["all", "all tasks"]].concat(TASKS.map(t => [t, t])), F.task, v => { F.task = v; fillTypes(); });
  select("f-status", "answer", [["all", "all"], ["right", "right"], ["wrong", "wrong"], ["unscored", "unscored"]],
         F.status, v => { F.status = v; });
  if (MULTI) select("f-status-run", "of run", runOpts, F.statusRun, v => { F.statusRun = +v; });
  const typeSel = select("f-type", "type", [["all", "all types"]], "all", v => { F.type = v; });
  function fillTypes() {
    const seen = new Set();
    for (const t of (F.task === "all" ? TASKS : [F.task])) for (const x of S[t].type) if (x !== null) seen.add(x);
    typeSel.replaceChildren(el("option", {value: "all"}, "all types"));
    for (const x of Array.from(seen).sort()) typeSel.appendChild(el("option", {value: x}, x));
    typeSel.value = "all"; F.type = "all";
  }
  fillTypes();
  if (MULTI) {
    select("f-flip", "flipped", [["all", "all questions"], ["any", "any flip A↔B"], ["rw", "A right → B wrong"],
      ["wr", "A wrong → B right"]], F.flip, v => { F.flip = v; });
    select("f-a", "A", runOpts, F.a, v => { F.a = +v; renderFlips(); });
    select("f-b", "B", runOpts, F.b, v => { F.b = +v; renderFlips(); });
  }
  const search = el("input", {id: "f-search", type: "search", placeholder: "search question, answers, target, id"});
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { F.q = search.value.trim().toLowerCase(); F.page = 0; refilter(); }, 120); });
  search.addEventListener("change", () => { clearTimeout(timer); F.q = search.value.trim().toLowerCase(); F.page = 0; refilter(); });
  filters.appendChild(el("label", {}, "search", search));
  select("f-size", "per page", [["25", "25"], ["50", "50"], ["100", "100"], ["200", "200"]], F.size, v => { F.size = +v; });

  const hay = {};
  function haystack(t) {
    if (!hay[t]) {
      const s = S[t];
      hay[t] = s.qid.map((q, i) => [q, s.prompt[i], s.target[i], s.type[i]].concat(s.runs.map(c => c.pred[i]), s.runs.map(c => c.parsed[i]))
        .filter(x => x !== null).join("\n").toLowerCase());
    }
    return hay[t];
  }
  function flipOf(t, i) {
    const a = state[t][F.a][i], b = state[t][F.b][i];
    return a === 1 && b === 0 ? "rw" : a === 0 && b === 1 ? "wr" : null;
  }
  let matches = new Int32Array(0);
  let lastFilterMs = 0;
  function refilter() {
    const start = performance.now();
    const out = [];
    const want = {right: 1, wrong: 0, unscored: -1}[F.status];
    TASKS.forEach((t, ti) => {
      if (F.task !== "all" && F.task !== t) return;
      const s = S[t], st = state[t][F.statusRun], n = s.qid.length, base = offsets[ti];
      const h = F.q ? haystack(t) : null;
      for (let i = 0; i < n; i++) {
        if (want !== undefined && st[i] !== want) continue;
        if (F.type !== "all" && s.type[i] !== F.type) continue;
        if (F.flip !== "all") { const f = flipOf(t, i); if (!f || (F.flip !== "any" && f !== F.flip)) continue; }
        if (h && !h[i].includes(F.q)) continue;
        out.push(base + i);
      }
    });
    matches = Int32Array.from(out);
    render();
    lastFilterMs = performance.now() - start;
    window.__viewer.lastFilterMs = lastFilterMs;
  }

  // ---------------------------------------------------------------- sample cards
  const pager = document.getElementById("pager");
  const prev = el("button", {id: "btn-prev", onclick: () => { F.page--; render(); }}, "‹ previous");
  const next = el("button", {id: "btn-next", onclick: () => { F.page++; render(); }}, "next ›");
  const info = el("span", {id: "pager-info"});
  pager.append(prev, info, next);
  const list = document.getElementById("sample-list");
  function locate(id) {
    let ti = 0;
    while (ti + 1 < TASKS.length && offsets[ti + 1] <= id) ti++;
    return [TASKS[ti], id - offsets[ti]];
  }
  function alphaBars(w) {
    const box = el("span", {class: "alpha", title: "gate α: " + w.join(", ")});
    const max = Math.max(...w, 1e-9);
    w.forEach((x, k) => { const b = el("span", {title: "α" + (k + 1) + " = " + x}); b.style.height = Math.max(1, 100 * x / max) + "%"; box.appendChild(b); });
    return box;
  }
  function card(t, i) {
    const s = S[t];
    const flip = MULTI ? flipOf(t, i) : null;
    const c = el("div", {class: "card", "data-task": t, "data-qid": s.qid[i], "data-flip": flip});
    const img = s.image[i];
    let pic = el("div", {class: "noimg"}, "no image");
    if (img >= 0) {
      pic = el("img", {src: D.images[img], alt: "image of question " + s.qid[i]});
      pic.addEventListener("load", () => { if (pic.naturalWidth < 100) pic.classList.add("small"); });
    }
    c.appendChild(el("div", {class: "thumb"}, pic));
    const body = el("div", {class: "body"});
    body.appendChild(el("div", {class: "head"}, el("span", {}, t), el("span", {class: "mono"}, "#" + s.qid[i]),
      s.type[i] !== null ? el("span", {}, "type: " + s.type[i]) : null,
      flip ? el("span", {class: "flipmark"}, flip === "rw" ? "A right → B wrong" : "A wrong → B right") : null));
    body.appendChild(el("div", {class: "q"}, s.prompt[i]));
    body.appendChild(el("details", {class: "prompt"}, el("summary", {}, "full prompt"), el("pre", {}, s.prompt_prefix + s.prompt[i] + s.prompt_suffix)));
    body.appendChild(el("div", {class: "target"}, el("b", {}, "target: "), el("span", {class: "target-text"}, fmt(s.target[i]))));
    const tbl = el("table", {class: "answers"}, el("tr", {}, el("th", {}, "run"), el("th", {}, "prediction"), el("th", {}, "parsed"),
      el("th", {}, "score"), el("th", {}, ""), el("th", {}, "gate α")));
    s.runs.forEach((col, ri) => {
      const st = state[t][ri][i];
      const cls = MULTI && flip ? (ri === F.a ? "flipA" : ri === F.b ? "flipB" : null) : null;
      tbl.appendChild(el("tr", {class: cls, "data-run": ri},
        el("td", {}, RUNS[ri].label + (MULTI && flip && ri === F.a ? " (A)" : MULTI && flip && ri === F.b ? " (B)" : "")),
        el("td", {class: "pred"}, col.pred[i] === null ? "—" : col.pred[i]),
        el("td", {class: "parsed"}, fmt(col.parsed[i])),
        el("td", {class: "num score"}, fmt(col.score[i])),
        el("td", {}, el("span", {class: "badge " + LABEL[st], "data-state": LABEL[st]}, LABEL[st])),
        el("td", {}, col.weights[i] ? alphaBars(col.weights[i]) : "—")));
    });
    body.appendChild(tbl);
    c.appendChild(body);
    return c;
  }
  function render() {
    const pages = Math.max(1, Math.ceil(matches.length / F.size));
    F.page = Math.min(Math.max(F.page, 0), pages - 1);
    const lo = F.page * F.size, hi = Math.min(matches.length, lo + F.size);
    const frag = document.createDocumentFragment();
    for (let k = lo; k < hi; k++) { const [t, i] = locate(matches[k]); frag.appendChild(card(t, i)); }
    if (!matches.length) frag.appendChild(el("div", {class: "empty"}, "No question matches these filters."));
    list.replaceChildren(frag);
    info.textContent = matches.length ? (lo + 1) + "–" + hi + " of " + matches.length + " (page " + (F.page + 1) + " of " + pages + ")" : "0 of 0";
    info.setAttribute("data-total", matches.length);
    prev.disabled = F.page === 0; next.disabled = F.page >= pages - 1;
  }

  // ---------------------------------------------------------------- flip summary
  function renderFlips() {
    if (!MULTI) return;
    const sec = document.getElementById("flips");
    sec.hidden = false;
    const body = document.getElementById("flips-body");
    const tbl = el("table", {id: "flip-summary"}, el("tr", {}, el("th", {}, "task"), el("th", {}, "A right → B wrong"), el("th", {}, "A wrong → B right")));
    for (const t of TASKS) {
      let rw = 0, wr = 0;
      for (let i = 0; i < S[t].qid.length; i++) { const f = flipOf(t, i); if (f === "rw") rw++; else if (f === "wr") wr++; }
      const go = (kind) => () => {
        F.flip = kind; F.task = t; F.page = 0;
        document.getElementById("f-flip").value = kind; document.getElementById("f-task").value = t; fillTypes();
        refilter(); document.getElementById("samples").scrollIntoView();
      };
      tbl.appendChild(el("tr", {"data-task": t}, el("td", {}, t),
        el("td", {class: "num"}, el("button", {class: "link", "data-kind": "rw", onclick: go("rw")}, String(rw))),
        el("td", {class: "num"}, el("button", {class: "link", "data-kind": "wr", onclick: go("wr")}, String(wr)))));
    }
    body.replaceChildren(el("p", {}, "A = " + RUNS[F.a].label + ", B = " + RUNS[F.b].label
      + " (choose A and B below). Click a count to list those questions with both answers beside the image."), tbl);
    if (F.flip !== "all") refilter();
  }

  window.__viewer = {parseAndSetupMs: 0, lastFilterMs: 0, total: total};
  renderFlips();
  refilter();
  window.__viewer.parseAndSetupMs = performance.now() - t0;
  window.__viewer.readyAt = performance.now();
  window.__viewer.ready = true;
})();
