// The console's one stylesheet and one script, served from the admin listener itself: an
// operator network is often closed, and the Content-Security-Policy allows nothing else.
// The script only refreshes the overview: it polls /console/live.json every 3 s and sets the
// chart's lines and markers, and /console/overview.json when the shared listing of accounts may
// be renewed (at most every 15 s: the answer's nextMs), and rebuilds the tables with textContent
// (values from traffic never become markup).

export const CONSOLE_JS = String.raw`'use strict';
(function () {
  var root = document.getElementById('overview');
  if (!root) return;
  var LIVE_MS = 3000;
  // The tables: when the server says the listing may be renewed; never more often than every 2 s.
  var TABLES_MIN_MS = 2000;
  var TABLES_MAX_MS = 15000;
  function byId(id) { return document.getElementById(id); }
  function cell(c) {
    var td = document.createElement('td');
    if (typeof c.meter === 'number') {
      var span = document.createElement('span');
      span.className = 'bar';
      var m = document.createElement('meter');
      m.min = 0; m.max = 1; m.low = 0.8; m.high = 0.999; m.optimum = 0;
      m.value = Math.min(1, Math.max(0, c.meter));
      m.setAttribute('aria-label', c.text);
      span.appendChild(m);
      span.appendChild(document.createTextNode(' ' + c.text));
      td.appendChild(span);
    } else if (typeof c.href === 'string') {
      var a = document.createElement('a');
      a.href = c.href;
      a.textContent = c.text;
      td.appendChild(a);
    } else {
      td.textContent = c.text;
    }
    return td;
  }
  function fill(id, rows) {
    var body = byId(id);
    if (!body) return;
    var columns = body.closest('table').querySelectorAll('thead th').length || 2;
    var empty = body.getAttribute('data-empty') || '';
    var out = document.createDocumentFragment();
    rows.forEach(function (cells) {
      var tr = document.createElement('tr');
      cells.forEach(function (c) { tr.appendChild(cell(c)); });
      out.appendChild(tr);
    });
    if (rows.length === 0) {
      var tr = document.createElement('tr');
      var td = document.createElement('td');
      td.colSpan = columns;
      td.className = 'none';
      td.textContent = empty;
      tr.appendChild(td);
      out.appendChild(tr);
    }
    body.replaceChildren(out);
  }
  function live(d) {
    d.chart.lines.forEach(function (l) {
      var line = byId('line-' + l.action);
      if (line) line.setAttribute('d', l.line);
      var marks = byId('marks-' + l.action);
      if (marks) marks.setAttribute('d', l.marks);
    });
    d.chart.ticks.forEach(function (t, i) { byId('tick-' + i).textContent = t; });
    byId('chart-summary').textContent = d.chart.summary;
    byId('updated').textContent = d.at;
  }
  // Just after the shared listing may be renewed: every tab sees it then, none makes it sooner.
  function after(nextMs) {
    var ms = Number(nextMs);
    return isFinite(ms) ? Math.min(TABLES_MAX_MS, Math.max(TABLES_MIN_MS, ms + 250)) : TABLES_MAX_MS;
  }
  var tablesIn = TABLES_MAX_MS;
  function tables(d) {
    fill('accounts-rows', d.accounts);
    fill('incidents-rows', d.incidents);
    fill('health-rows', d.health);
    byId('listed').textContent = d.listed;
    tablesIn = after(d.nextMs);
  }
  function get(url, then) {
    return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) {
        // Signed out or expired: to the sign-in form, back here after.
        if (res.status === 401) { location.assign('/console/login'); return null; }
        if (!res.ok) throw new Error('status ' + res.status);
        return res.json();
      })
      .then(function (d) { if (d) { then(d); root.classList.remove('stale'); } })
      .catch(function () { root.classList.add('stale'); });
  }
  function pollLive() {
    get('/console/live.json', live).then(function () { setTimeout(pollLive, LIVE_MS); });
  }
  function pollTables() {
    tablesIn = TABLES_MAX_MS;
    get('/console/overview.json', tables).then(function () { setTimeout(pollTables, tablesIn); });
  }
  setTimeout(pollLive, LIVE_MS);
  setTimeout(pollTables, after(root.getAttribute('data-next-ms')));
})();
`

export const CONSOLE_CSS = `:root {
  --ink: #1b1f24; --muted: #59636e; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --accent: #0b5cad; --danger: #b42318; --ok: #1a7f37;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
code, .id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.92em; overflow-wrap: anywhere; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #f0b400; outline-offset: 1px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 2; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 8px 20px; background: #14213d; color: #fff; }
.top a { color: #dbe7ff; text-decoration: none; padding: 4px 2px; }
.top a[aria-current="page"] { color: #fff; border-bottom: 2px solid #f0b400; }
.top a:hover { text-decoration: underline; }
.brand { font-weight: 700; letter-spacing: 0.04em; }
.top nav ul { display: flex; gap: 16px; list-style: none; margin: 0; padding: 0; }
.top form { display: flex; align-items: center; gap: 6px; margin: 0; }
.top .find { margin-left: auto; }
.top label, .top .who { color: #dbe7ff; font-size: 0.9em; }
.top input { width: 14em; }
main { max-width: 1200px; margin: 0 auto; padding: 12px 20px 40px; }
h1 { font-size: 1.5em; margin: 12px 0; }
h1 small, h2 small { font-size: 0.6em; font-weight: normal; color: var(--muted); }
h2 { font-size: 1.15em; margin: 20px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
th { background: var(--panel); font-weight: 600; }
td.none { color: var(--muted); }
.columns { display: grid; grid-template-columns: 2fr 1fr; gap: 24px; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
.bar { display: inline-flex; align-items: center; gap: 6px; white-space: nowrap; }
meter { width: 120px; height: 14px; }
input, select, button { font: inherit; padding: 4px 8px; border: 1px solid #8c959f; border-radius: 4px; background: #fff; color: var(--ink); }
button, .button { cursor: pointer; background: var(--accent); color: #fff; border: 1px solid var(--accent); border-radius: 4px; padding: 5px 12px; text-decoration: none; display: inline-block; }
.button.danger, button.danger { background: var(--danger); border-color: var(--danger); }
.top button { background: transparent; border-color: #8fa6d1; }
.controls { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
label { font-weight: 600; margin-right: 6px; }
.confirm label, .sign-in label { display: block; margin-bottom: 4px; }
.confirm input, .sign-in input { width: min(28em, 100%); }
.hint { display: block; color: var(--muted); font-size: 0.88em; }
.facts .hint, .lookup .hint { display: inline; }
.flash { background: #dafbe1; border: 1px solid #4ac26b; padding: 8px 12px; border-radius: 4px; }
.error { background: #ffebe9; border: 1px solid #ff8182; padding: 8px 12px; border-radius: 4px; }
.disabled li { margin: 4px 0; }
.sign-in { max-width: 32em; margin: 40px auto; }
.filters, .lookup { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 8px 0 12px; }
.lookup input { width: 14em; text-transform: uppercase; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; }
.sentence { font-size: 1.08em; }
ul.plain { margin: 0; padding-left: 1.1em; }
.chart { margin: 0; }
.chart svg { width: 100%; max-height: 260px; background: var(--panel); border: 1px solid var(--line); border-radius: 4px; }
.chart .grid line { stroke: var(--line); }
.chart .axis text { font-size: 11px; fill: var(--muted); text-anchor: end; }
.chart .axis text.x { text-anchor: start; }
.chart .axis text.x.end { text-anchor: end; }
.series { stroke: currentColor; fill: none; }
.series .line { stroke-width: 2; stroke-linejoin: round; }
.series .marks { stroke-width: 1.5; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; list-style: none; padding: 0; margin: 6px 0; }
.legend li { display: inline-flex; align-items: center; gap: 6px; }
.key { width: 44px; height: 12px; overflow: visible; }
.a-throttle { color: #b35c00; }
.a-throttle .line { stroke-width: 4; }
.a-challenge { color: #6f42c1; }
.a-challenge .line { stroke-width: 2.2; stroke-dasharray: 9 4; }
.a-disable { color: #cf222e; }
.a-disable .line { stroke-width: 3.4; stroke-dasharray: 3 3; }
.a-disabled { color: #7d1a1a; }
.a-disabled .line { stroke-width: 1.8; stroke-dasharray: 10 3 2 3; }
.a-log { color: #0969da; }
.a-log .line { stroke-width: 2.6; stroke-dasharray: 5 4; }
.a-unavailable { color: #57606a; }
.a-unavailable .line { stroke-width: 1.5; stroke-dasharray: 10 3 2 3 2 3; }
.live { margin-left: 8px; }
.stale .live::after { content: " (not updating: the admin listener does not answer)"; color: var(--danger); }
`
