"""The live page: one self-contained HTML file (inline style and script)."""

# ruff: noqa: E501

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>actors</title>
<style>
:root { --bg:#fbfbfa; --fg:#1d2433; --dim:#6b7385; --line:#e3e5ea; --ok:#1a7f37;
        --warn:#9a6700; --bad:#cf222e; --acc:#0b5cad; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
       background:var(--bg); color:var(--fg); }
header { display:flex; gap:24px; align-items:baseline; padding:12px 20px;
         border-bottom:1px solid var(--line); background:#fff; position:sticky; top:0; }
header h1 { font-size:18px; margin:0; }
.stat b { font-variant-numeric:tabular-nums; }
#status { margin-left:auto; color:var(--dim); }
#status.live::before { content:"\\25cf "; color:var(--ok); }
#status.down::before { content:"\\25cf "; color:var(--bad); }
main { padding:12px 20px 40px; }
h2 { font-size:15px; margin:22px 0 6px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { padding:4px 10px; text-align:left; border-bottom:1px solid var(--line);
         white-space:nowrap; }
th { font-weight:600; color:var(--dim); font-size:12px; text-transform:uppercase; }
td.n { text-align:right; font-variant-numeric:tabular-nums; }
td.name { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; }
.indent { display:inline-block; }
.state-running { color:var(--ok); }
.state-starting, .state-stopping, .state-restarting { color:var(--warn); }
.state-failed, .state-stopped { color:var(--bad); }
.changed { animation: flash 1s; }
@keyframes flash { from { background:#fff3c4; } to { background:transparent; } }
.failure { color:var(--bad); max-width:360px; overflow:hidden; text-overflow:ellipsis; }
.more td { color:var(--dim); font-style:italic; }
.tags { color:var(--dim); font-size:12px; }
.empty { color:var(--dim); }
button { font:12px system-ui, sans-serif; padding:1px 8px; border:1px solid var(--line);
         border-radius:4px; background:#fff; cursor:pointer; }
button:hover { border-color:var(--bad); color:var(--bad); }
</style>
</head>
<body>
<header>
  <h1 id="system">actors</h1>
  <span class="stat">actors <b id="t-actors">-</b></span>
  <span class="stat">spawned <b id="t-spawned">-</b></span>
  <span class="stat">dead letters <b id="t-dead">-</b></span>
  <span class="stat">msg/s <b id="t-rate">-</b></span>
  <span id="status">connecting</span>
</header>
<main>
<h2>Supervision tree</h2>
<table id="tree">
<thead><tr><th>actor</th><th>class</th><th>state</th><th>mailbox</th><th>processed</th>
<th>msg/s</th><th>restarts</th><th>last failure</th><th>dead letters</th><th>names, topics</th><th class="control"></th></tr></thead>
<tbody id="rows"><tr><td colspan="10" class="empty">waiting for the first snapshot</td></tr></tbody>
</table>
<div id="extra"></div>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const query = token ? "?token=" + encodeURIComponent(token) : "";
const rows = new Map();
let sections = {};
let rates = new Map(), last = new Map(), lastTime = 0, pending = false;
const esc = s => String(s).replace(/[&<>"']/g,
  c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"})[c]);
const fmt = n => n === null || n === undefined ? "\\u221e" : Number(n).toLocaleString("en");

function schedule() {
  if (!pending) { pending = true; requestAnimationFrame(render); }
}

function rateOf(time) {
  if (lastTime && time > lastTime) {
    const dt = time - lastTime;
    for (const [path, row] of rows) {
      const before = last.get(path);
      rates.set(path, before === undefined || before > row.processed ? 0 : (row.processed - before) / dt);
    }
  }
  last = new Map([...rows].map(([p, r]) => [p, r.processed]));
  lastTime = time;
}

function render() {
  pending = false;
  const kids = new Map();
  for (const row of rows.values()) {
    if (!kids.has(row.parent)) kids.set(row.parent, []);
    kids.get(row.parent).push(row);
  }
  const out = [];
  let total = 0;
  const walk = (parent, depth) => {
    for (const row of kids.get(parent) || []) {
      const name = row.path.slice(row.path.lastIndexOf("/") + 1);
      const rate = rates.get(row.path) || 0;
      total += rate;
      const tags = [...row.names.map(n => "name " + n),
                    ...row.subscriptions.map(([p, g]) => "topic " + p + (g ? " [" + g + "]" : "")),
                    ...Object.entries(row.details).map(([k, v]) => k + " " + v)].join(", ");
      out.push('<tr data-path="' + esc(row.path) + '" class="' + (row.flash ? "changed" : "") + '">' +
        '<td class="name"><span class="indent" style="width:' + depth * 18 + 'px"></span>' + esc(name) + "</td>" +
        "<td>" + esc(row.class) + "</td>" +
        '<td class="state state-' + esc(row.state) + '">' + esc(row.state) + "</td>" +
        '<td class="n mailbox">' + fmt(row.mailbox) + " / " + fmt(row.capacity) + "</td>" +
        '<td class="n processed">' + fmt(row.processed) + "</td>" +
        '<td class="n rate">' + fmt(Math.round(rate)) + "</td>" +
        '<td class="n restarts">' + fmt(row.restarts) + "</td>" +
        '<td class="failure" title="' + esc(row.last_failure || "") + '">' + esc(row.last_failure || "") + "</td>" +
        '<td class="n dead">' + fmt(row.dead_letters) + "</td>" +
        '<td class="tags">' + esc(tags) + "</td>" +
        (token ? '<td class="control"><button data-do="stop">stop</button> <button data-do="kill">kill</button></td>' : "") +
        "</tr>");
      row.flash = false;
      walk(row.path, depth + 1);
      if (row.hidden) out.push('<tr class="more"><td colspan="10"><span class="indent" style="width:' +
        (depth + 1) * 18 + 'px"></span>\\u2026 and ' + fmt(row.hidden) + " more children of " + esc(name) + "</td></tr>");
    }
  };
  walk("/user", 0);
  const totals = sections.totals || {};
  if (totals.hidden_top) out.push('<tr class="more"><td colspan="10">\\u2026 and ' + fmt(totals.hidden_top) + " more top-level actors</td></tr>");
  document.getElementById("rows").innerHTML = out.join("") ||
    '<tr><td colspan="10" class="empty">no actors</td></tr>';
  document.getElementById("system").textContent = sections.system || "actors";
  document.title = (sections.system || "actors") + " \\u2014 actors";
  document.getElementById("t-actors").textContent = fmt(totals.actors);
  document.getElementById("t-spawned").textContent = fmt(totals.spawned);
  document.getElementById("t-dead").textContent = fmt(totals.dead_letters);
  document.getElementById("t-rate").textContent = fmt(Math.round(total));
  renderExtra();
}

function table(title, head, body) {
  if (!body.length) return "";
  return "<h2>" + title + "</h2><table><thead><tr>" + head.map(h => "<th>" + h + "</th>").join("") +
    "</tr></thead><tbody>" + body.map(r => "<tr>" + r.map(c => "<td>" + esc(c) + "</td>").join("") + "</tr>").join("") +
    "</tbody></table>";
}

function renderExtra() {
  const topics = (sections.topics || {}).patterns || [];
  const pools = sections.pools || [];
  const nodes = sections.nodes || [];
  const durable = (sections.durable || {}).consumers || [];
  document.getElementById("extra").innerHTML =
    table("Topics", ["pattern", "subscribers", "groups"], topics.map(t =>
      [t.pattern, fmt(t.subscribers), t.groups.map(g => g.name + " (" + g.members + ")").join(", ")])) +
    table("Process pools", ["pool", "state", "workers", "restarts", "error"], pools.map(p =>
      [p.name, p.state, p.workers.map(w => (w.pid || "-") + " " + w.state + " (" + w.actors + ")").join(", "),
       fmt(p.restarts), p.error || ""])) +
    table("Connected systems", ["node", "link", "error"], nodes.map(n => [n.node, n.link, n.error || ""])) +
    table("Durable consumers", ["stream", "consumer", "lag", "in flight", "ack floor", "last seq", "DLQ"],
      durable.map(c => [c.stream, c.consumer, fmt(c.pending), fmt(c.in_flight), fmt(c.ack_floor),
                        fmt(c.last_seq), fmt(c.dead_letters)]));
}

function connect() {
  const events = new EventSource("/api/events" + query);
  const status = document.getElementById("status");
  events.onopen = () => { status.textContent = "live"; status.className = "live"; };
  events.onerror = () => { status.textContent = "disconnected"; status.className = "down"; };
  events.addEventListener("snapshot", e => {
    const snap = JSON.parse(e.data);
    rows.clear();
    for (const row of snap.actors) rows.set(row.path, row);
    const { actors, ...rest } = snap;
    sections = rest;
    rateOf(snap.time);
    schedule();
  });
  events.addEventListener("delta", e => {
    const d = JSON.parse(e.data);
    for (const path of d.removed) rows.delete(path);
    for (const row of d.set) {
      const before = rows.get(row.path);
      row.flash = !!before && (before.restarts !== row.restarts || before.state !== row.state);
      rows.set(row.path, row);
    }
    const { set, removed, ...rest } = d;
    Object.assign(sections, rest);
    rateOf(d.time);
    schedule();
  });
}
// With a token the page may stop and kill actors (a supervisor restarts a
// permanent child either way). On the press, not the click: rows are redrawn
// as deltas arrive, and a redraw between press and release loses a click.
// A click from the keyboard (detail 0) still acts.
function act(e) {
  if (e.type === "click" && e.detail !== 0) return;
  const button = e.target.closest("button[data-do]");
  if (!button || !token) return;
  const path = button.closest("tr").dataset.path;
  fetch("/api/actors/" + button.dataset.do + "?path=" + encodeURIComponent(path), {
    method: "POST", headers: { Authorization: "Bearer " + token } });
}
document.getElementById("rows").addEventListener("pointerdown", act);
document.getElementById("rows").addEventListener("click", act);
if (!token) for (const th of document.querySelectorAll("th.control")) th.remove();
connect();
// Rates fall to zero when nothing changes (no delta comes then).
setInterval(() => {
  if (lastTime && Date.now() / 1000 - lastTime > 1.5 && [...rates.values()].some(r => r)) {
    rates = new Map(); schedule();
  }
}, 1000);
</script>
</body>
</html>
"""
