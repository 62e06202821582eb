// SVG drawings: the job graph and the checkpoint chart.
import { esc, short, dur, bytes, time } from './fmt.js';

const BW = 230, BH = 108, GX = 110, GY = 26, PAD = 16;

// jobGraph draws vertices in columns by depth, edges left to right.
// rates maps a vertex id to {in, out, bp, busy} per second (bp and busy
// in percent). Each box is tinted by its busy share, and the busiest vertex
// at 50 % busy or more is marked the bottleneck: the vertices upstream of it
// are backpressured, but it is the one to scale or speed up.
export function jobGraph(g, rates) {
  const bottleneck = bottleneckOf(g, rates);
  const depth = {}, byId = {};
  g.vertices.forEach((v) => { byId[v.id] = v; depth[v.id] = 0; });
  // vertices come in topological order, so one pass settles depths
  g.vertices.forEach((v) => {
    g.edges.filter((e) => e.to === v.id).forEach((e) => {
      depth[v.id] = Math.max(depth[v.id], (depth[e.from] ?? 0) + 1);
    });
  });
  const cols = [];
  g.vertices.forEach((v) => { (cols[depth[v.id]] ||= []).push(v.id); });
  const pos = {};
  cols.forEach((ids, c) => ids.forEach((id, r) => {
    pos[id] = { x: PAD + c * (BW + GX), y: PAD + r * (BH + GY) };
  }));
  const rows = Math.max(1, ...cols.map((c) => c.length));
  const W = PAD * 2 + cols.length * BW + Math.max(0, cols.length - 1) * GX;
  const H = PAD * 2 + rows * BH + (rows - 1) * GY;
  let out = `<svg id="job-graph" role="img" aria-label="Job graph: ${g.vertices.length} vertices, ${g.edges.length} edges" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`;
  out += '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8796ad"/></marker></defs>';
  g.edges.forEach((e) => {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) return;
    const x1 = a.x + BW, y1 = a.y + BH / 2, x2 = b.x - 2, y2 = b.y + BH / 2, mx = (x1 + x2) / 2;
    const label = e.partitioning + (e.tag ? ` (${e.tag})` : '');
    out += `<g class="edge-g" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><path class="edge" marker-end="url(#arrow)" d="M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}"/>`;
    out += `<text class="elabel" x="${mx}" y="${(y1 + y2) / 2 - 5}" text-anchor="middle">${esc(label)}</text></g>`;
  });
  g.vertices.forEach((v) => {
    const p = pos[v.id], r = rates[v.id] || {};
    const bp = r.bp ?? null, busy = r.busy ?? null;
    const isBn = v.id === bottleneck;
    const chain = v.nodes.map((n) => n.name).join(' → ');
    const kinds = v.nodes.map((n) => n.connector ? `${n.kind}:${n.connector}` : n.kind).join(', ');
    out += `<g class="vertex${isBn ? ' bottleneck' : ''}" data-vertex="${esc(v.id)}"${busy == null ? '' : ` data-busy="${busy.toFixed(0)}"`} transform="translate(${p.x},${p.y})">`;
    out += `<title>${esc(v.id)}: ${esc(chain)} (${esc(kinds)})${isBn ? ' — the bottleneck: the busiest vertex' : ''}</title>`;
    out += `<rect class="vbox${bp != null && bp >= 10 ? ' bp' : ''}${isBn ? ' bn' : ''}" width="${BW}" height="${BH}" rx="8"${busy == null ? '' : ` style="fill:${heat(busy)}"`}/>`;
    if (isBn) out += `<text class="vtag" x="${BW - 10}" y="19" text-anchor="end">bottleneck</text>`;
    out += `<text class="vtitle" x="10" y="19">${esc(clip(v.id, 24))}<tspan class="vsmall" dx="6">×${v.parallelism}</tspan></text>`;
    out += `<text class="vsmall" x="10" y="36">${esc(clip(chain, 34))}</text>`;
    out += `<text x="10" y="55">in ${r.in == null ? '-' : short(r.in) + '/s'}  ·  out ${r.out == null ? '-' : short(r.out) + '/s'}</text>`;
    out += `<text class="vsmall" x="10" y="73">busy ${busy == null ? '-' : busy.toFixed(0) + '%'}  ·  backpressure ${bp == null ? '-' : bp.toFixed(0) + '%'}</text>`;
    out += `<text class="vsmall" x="10" y="91">${esc(states(v.states))}${v.event_time_lag_ms == null ? '' : '  ·  lag ' + esc(dur(v.event_time_lag_ms))}</text>`;
    out += '</g>';
  });
  return out + '</svg>';
}

// bottleneckOf is the busiest vertex, if it is busy half the time or more.
function bottleneckOf(g, rates) {
  let best = null, most = 50;
  g.vertices.forEach((v) => {
    const b = (rates[v.id] || {}).busy;
    if (b != null && b >= most) { best = v.id; most = b; }
  });
  return best;
}

// heat tints a box from white (idle) to red (busy all the time).
function heat(busy) {
  const f = Math.max(0, Math.min(100, busy)) / 100;
  return `hsl(${(1 - f) * 45}, ${Math.round(20 + f * 70)}%, ${Math.round(99 - f * 19)}%)`;
}

function states(s) {
  return Object.entries(s || {}).map(([k, n]) => `${n} ${k.toLowerCase()}`).join(', ') || 'no subtasks';
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

// checkpointChart plots duration and size of checkpoints over trigger time;
// failed checkpoints are red marks on the time axis.
export function checkpointChart(history) {
  const W = 900, H = 230, L = 64, R = 74, T = 14, B = 34;
  const rows = history.slice().reverse().filter((c) => c.status !== 'IN_PROGRESS');
  const done = rows.filter((c) => c.status === 'COMPLETED');
  if (rows.length === 0) return '<p class="muted">No finished checkpoint yet.</p>';
  const ts = rows.map((c) => new Date(c.trigger_time).getTime());
  let t0 = Math.min(...ts), t1 = Math.max(...ts);
  if (t1 === t0) { t0 -= 500; t1 += 500; }
  const dmax = Math.max(1, ...done.map((c) => c.duration_ms));
  const smax = Math.max(1, ...done.map((c) => c.size_bytes));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const yd = (d) => T + (1 - d / dmax) * (H - T - B);
  const ys = (s) => T + (1 - s / smax) * (H - T - B);
  let o = `<svg id="checkpoint-chart" role="img" aria-label="Checkpoint duration and size over time, ${done.length} completed" width="100%" viewBox="0 0 ${W} ${H}" preserveAspectRatio="xMinYMin meet">`;
  for (let i = 0; i <= 4; i++) {
    const y = T + (i / 4) * (H - T - B);
    o += `<line class="gridl" x1="${L}" x2="${W - R}" y1="${y}" y2="${y}"/>`;
    o += `<text x="${L - 6}" y="${y + 4}" text-anchor="end">${esc(dur(dmax * (1 - i / 4)))}</text>`;
    o += `<text x="${W - R + 6}" y="${y + 4}">${esc(bytes(Math.round(smax * (1 - i / 4))))}</text>`;
  }
  o += `<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>`;
  o += `<text x="${L}" y="${H - 10}">${esc(time(new Date(t0).toISOString()))}</text>`;
  o += `<text x="${W - R}" y="${H - 10}" text-anchor="end">${esc(time(new Date(t1).toISOString()))}</text>`;
  if (done.length) {
    const pd = done.map((c) => `${x(new Date(c.trigger_time).getTime()).toFixed(1)},${yd(c.duration_ms).toFixed(1)}`).join(' ');
    const ps = done.map((c) => `${x(new Date(c.trigger_time).getTime()).toFixed(1)},${ys(c.size_bytes).toFixed(1)}`).join(' ');
    o += `<polyline class="dur" points="${pd}"/><polyline class="size" points="${ps}"/>`;
    done.forEach((c) => {
      o += `<circle cx="${x(new Date(c.trigger_time).getTime()).toFixed(1)}" cy="${yd(c.duration_ms).toFixed(1)}" r="2.5" fill="#1f5fbf"><title>#${c.id}: ${esc(dur(c.duration_ms))}, ${esc(bytes(c.size_bytes))}</title></circle>`;
    });
  }
  rows.filter((c) => c.status === 'FAILED').forEach((c) => {
    o += `<rect class="pt-failed" x="${x(new Date(c.trigger_time).getTime()) - 3}" y="${H - B - 8}" width="6" height="8"><title>#${c.id} failed: ${esc(c.failure_reason)}</title></rect>`;
  });
  return o + '</svg><div class="legend"><span class="l-dur">━ duration (left)</span><span class="l-size">╍ size (right)</span><span class="err">▮ failed</span></div>';
}
