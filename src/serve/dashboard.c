/* GET /: one self-contained page (no CDN, no external files) that polls
 * /status?since=STEP once a second and plots loss and accuracy as inline
 * SVG. With a bearer token, open it as /#token=TOKEN: the fragment never
 * leaves the browser, and the script sends it as an Authorization header.
 * body[data-first] (points after the first poll), [data-points] and
 * [data-updates] let a headless browser test see the plot grow. */
#include "serve/internal.h"

#include <stdlib.h>
#include <string.h>

static const char page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tessera coordinator</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\n"
    "h1{font-size:1.3em;margin:0 0 .6em}\n"
    "table{border-collapse:collapse;margin:.5em 0 1em}td,th{padding:.15em .8em;text-align:left;"
    "border-bottom:1px solid #ddd}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}.chart{background:#fff;border:1px solid #ddd;padding:.5em}\n"
    ".chart h2{font-size:1em;margin:0 0 .3em}svg text{font-size:11px;fill:#555}\n"
    "#err{color:#b00}\n"
    "</style></head>\n<body data-points=\"0\" data-updates=\"0\" data-first=\"0\">\n"
    "<h1>tessera coordinator</h1>\n<div id=\"err\"></div>\n"
    "<table id=\"summary\"><tbody></tbody></table>\n"
    "<div class=\"charts\">\n"
    "<div class=\"chart\"><h2>loss</h2><svg id=\"loss\" width=\"520\" height=\"220\"></svg></div>\n"
    "<div class=\"chart\"><h2>accuracy</h2><svg id=\"accuracy\" width=\"520\" height=\"220\"></svg></div>\n"
    "</div>\n<h2 style=\"font-size:1em\">ranks</h2>\n"
    "<table id=\"ranks\"><thead><tr><th>rank</th><th>placement</th><th>step s (min/mean/max)</th>"
    "<th>comm s (min/mean/max)</th></tr></thead><tbody></tbody></table>\n"
    "<script>\n"
    "'use strict';\n"
    "const token = new URLSearchParams(location.hash.slice(1)).get('token');\n"
    "const headers = token ? {Authorization: 'Bearer ' + token} : {};\n"
    "const pts = []; let last = -1, updates = 0;\n"
    "const NS = 'http://www.w3.org/2000/svg';\n"
    "function el(tag, attrs, text) { const e = document.createElementNS(NS, tag);\n"
    "  for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }\n"
    "function fmt(v, d) { return v === null || v === undefined ? '-' : (typeof v === 'number' ? "
    "(Number.isInteger(v) ? String(v) : v.toPrecision(d || 4)) : String(v)); }\n"
    "function plot(id, k) {\n"
    "  const svg = document.getElementById(id), W = 520, H = 220, L = 56, R = 10, T = 10, B = 24;\n"
    "  while (svg.firstChild) svg.removeChild(svg.firstChild);\n"
    "  const p = pts.filter(q => q[k] !== null);\n"
    "  svg.appendChild(el('rect', {x: L, y: T, width: W - L - R, height: H - T - B, fill: 'none', stroke: '#ccc'}));\n"
    "  if (!p.length) { svg.appendChild(el('text', {x: L + 8, y: T + 20}, 'no data yet')); return; }\n"
    "  let x0 = p[0][0], x1 = p[p.length - 1][0], y0 = Math.min(...p.map(q => q[k])), "
    "y1 = Math.max(...p.map(q => q[k]));\n"
    "  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }\n"
    "  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => T + (y1 - y) / (y1 - y0) * (H - T - B);\n"
    "  svg.appendChild(el('polyline', {points: p.map(q => sx(q[0]).toFixed(1) + ',' + sy(q[k]).toFixed(1)).join(' '),"
    " fill: 'none', stroke: k === 1 ? '#c0392b' : '#2471a3', 'stroke-width': 1.5}));\n"
    "  svg.appendChild(el('text', {x: 2, y: T + 10}, fmt(y1)));\n"
    "  svg.appendChild(el('text', {x: 2, y: H - B}, fmt(y0)));\n"
    "  svg.appendChild(el('text', {x: L, y: H - 6}, 'step ' + x0));\n"
    "  svg.appendChild(el('text', {x: W - R - 80, y: H - 6}, 'step ' + x1));\n"
    "}\n"
    "function row(tb, cells) { const tr = document.createElement('tr');\n"
    "  for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }\n"
    "  tb.appendChild(tr); }\n"
    "function show(s) {\n"
    "  const tb = document.querySelector('#summary tbody'); tb.textContent = '';\n"
    "  const m = s.model || {};\n"
    "  row(tb, ['state', s.state]);\n"
    "  if (s.training) {\n"
    "    row(tb, ['step', fmt(s.step) + (s.total_steps ? ' / ' + s.total_steps : '')]);\n"
    "    row(tb, ['epoch', fmt(s.epoch) + ' / ' + fmt(s.epochs)]);\n"
    "    row(tb, ['loss', fmt(s.loss)]); row(tb, ['test loss', fmt(s.test_loss)]);\n"
    "    row(tb, ['accuracy', s.accuracy === null ? '-' : (100 * s.accuracy).toFixed(2) + ' %']);\n"
    "    row(tb, ['samples/s', fmt(s.samples_per_s, 6)]); row(tb, ['ranks', fmt(s.world_size)]);\n"
    "    row(tb, ['checkpoint', s.checkpoint]);\n"
    "  }\n"
    "  row(tb, ['model', (m.version ? 'version ' + m.version + ', ' + m.inputs + ' -> ' + m.outputs : 'none') +"
    " (m.source ? ' (' + m.source + ')' : '')]);\n"
    "  const rb = document.querySelector('#ranks tbody'); rb.textContent = '';\n"
    "  const t = v => fmt(v.min) + ' / ' + fmt(v.mean) + ' / ' + fmt(v.max);\n"
    "  for (const r of s.ranks || []) row(rb, [r.rank, r.placement || '-', t(r.step_time_s), t(r.comm_time_s)]);\n"
    "}\n"
    "async function tick() {\n"
    "  try {\n"
    "    const r = await fetch('status?since=' + last, {headers, cache: 'no-store'});\n"
    "    if (!r.ok) throw new Error('status: HTTP ' + r.status);\n"
    "    const s = await r.json();\n"
    "    for (const h of s.history || []) if (h[0] > last) { pts.push(h); last = h[0]; }\n"
    "    show(s); plot('loss', 1); plot('accuracy', 2);\n"
    "    document.body.dataset.points = pts.length; document.body.dataset.updates = ++updates;\n"
    "    if (updates === 1) document.body.dataset.first = pts.length;\n"
    "    document.getElementById('err').textContent = '';\n"
    "  } catch (e) { document.getElementById('err').textContent = String(e); }\n"
    "}\n"
    "tick(); setInterval(tick, 1000);\n"
    "</script>\n</body></html>\n";

void serve_route_dashboard(serve_req_t *r)
{
    char *b = malloc(sizeof page);
    if (b)
        memcpy(b, page, sizeof page);
    serve_text(r, 200, "text/html; charset=utf-8", b, sizeof page - 1);
}
