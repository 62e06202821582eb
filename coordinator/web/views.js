// One view per route: load fetches what the page shows, render turns it
// into HTML. Both run on every refresh.
import { get, post } from './api.js';
import { esc, time, ago, dur, bytes, num, short, badge, stats } from './fmt.js';
import { jobGraph, checkpointChart } from './svg.js';

const STATES = ['CREATED', 'SCHEDULING', 'DEPLOYING', 'RUNNING', 'FAILING', 'RESTARTING', 'CANCELLING', 'FINISHED', 'FAILED', 'CANCELLED'];
const enc = encodeURIComponent;

function card(k, v, d = '', id = '') {
  return `<div class="card"${id ? ` id="${id}"` : ''}><div class="k">${esc(k)}</div><div class="v">${v}</div>${d ? `<div class="d">${d}</div>` : ''}</div>`;
}

function bar(frac, warn = false) {
  const p = Math.max(0, Math.min(1, frac || 0)) * 100;
  return `<span class="bar${warn ? ' warn' : ''}" role="img" aria-label="${p.toFixed(0)} percent"><span style="width:${p.toFixed(1)}%"></span></span>`;
}

// ---------------------------------------------------------------- overview

const overview = {
  async load() {
    const [ov, ws, js] = await Promise.all([get('/overview'), get('/workers'), get('/jobs')]);
    return { ov, workers: ws.workers, jobs: js.jobs };
  },
  render({ ov, workers, jobs }) {
    const now = Date.now();
    let h = '<h1>Cluster overview</h1>';
    const plainCluster = (ov.insecure_reasons || []).includes('cluster connections without mutual TLS');
    if (plainCluster) {
      h += '<p class="banner" id="insecure-banner" role="alert"><strong>Insecure cluster:</strong> the coordinator and the workers talk without mutual TLS; any process that reaches them can register as a worker, receive job specs and send records. Start them with <code>--tls-cert</code>, <code>--tls-key</code> and <code>--tls-ca</code> (<code>weir dev</code> without <code>--insecure</code> does).</p>';
    }
    h += '<div class="cards" id="overview-cards">';
    h += card('Workers', num(ov.workers));
    h += card('Slots used', `${num(ov.slots_used)} / ${num(ov.slots_total)}`, `${num(ov.slots_free)} free`);
    h += card('Running jobs', num(ov.jobs.RUNNING));
    h += card('Jobs', num(jobs.length));
    const co = ov.coordinator || { role: 'single' };
    h += card('Coordinator', co.role === 'leader' ? `leader ${esc(co.id)}` : 'single', (co.role === 'leader' ? `fencing token ${num(co.fencing_token)}; standbys redirect here` : 'no etcd: one coordinator') +
      `<div id="coordinator-version">weir ${esc(co.version || '-')} (${esc(co.go_version || '-')})</div>`, 'coordinator-card');
    h += card('Cluster TLS', plainCluster ? 'off' : 'mutual TLS', plainCluster ? 'plaintext, unauthenticated' : 'workers need the cluster CA');
    h += '</div>';
    h += '<h2>Jobs by state</h2><div class="panel"><table id="jobs-by-state"><thead><tr>';
    STATES.forEach((s) => { h += `<th class="num">${badge(s)}</th>`; });
    h += '</tr></thead><tbody><tr>';
    STATES.forEach((s) => { h += `<td class="num">${num(ov.jobs[s] || 0)}</td>`; });
    h += '</tr></tbody></table></div>';
    h += `<h2>Workers</h2><div class="panel"><table id="workers"><thead><tr><th>Worker</th><th>State</th><th>Slots used / total</th><th class="num">Free</th><th>Memory</th><th>Last heartbeat</th><th>Registered</th><th>Data address</th><th>Metrics</th><th>Build</th></tr></thead><tbody>`;
    if (!workers.length) h += '<tr><td colspan="10" class="muted">No worker registered.</td></tr>';
    workers.forEach((w) => {
      h += `<tr data-worker="${esc(w.id)}"><td>${esc(w.id)}</td><td>${badge(w.state)}${w.drain && w.drain.waiting ? `<div class="muted drain-waiting">${esc(w.drain.waiting)}</div>` : ''}</td><td>${bar(w.slots ? w.slots_used / w.slots : 0)} ${num(w.slots_used)} / ${num(w.slots)}</td><td class="num">${num(w.slots - w.slots_used)}</td><td class="mem">${memory(w)}</td>`;
      h += `<td title="${esc(time(w.last_heartbeat, true))}">${esc(ago(w.last_heartbeat, now))}</td><td>${esc(time(w.registered_at))}</td><td>${esc(w.data_addr)}</td>`;
      h += `<td>${w.http_addr ? `<a href="http://${esc(w.http_addr)}/metrics">${esc(w.http_addr)}</a>` : '-'}</td><td class="build">${build(w)}</td></tr>`;
    });
    h += '</tbody></table></div>';
    h += `<h2>Jobs</h2><div class="panel"><table id="jobs"><thead><tr><th>Job</th><th>Name</th><th>State</th><th class="num">Attempt</th><th class="num">Subtasks</th><th>Submitted</th><th>Ended</th></tr></thead><tbody>`;
    if (!jobs.length) h += '<tr><td colspan="7" class="muted">No job submitted yet (<code>weir submit job.yaml</code>).</td></tr>';
    jobs.forEach((j) => {
      h += `<tr data-job="${esc(j.id)}"><td><a href="#/jobs/${enc(j.id)}">${esc(j.id)}</a></td><td>${esc(j.name)}</td><td>${badge(j.state)}</td><td class="num">${num(j.attempt)}</td><td class="num">${num(j.tasks)}</td><td>${esc(time(j.submitted_at))}</td><td>${esc(time(j.ended_at))}</td></tr>`;
    });
    return h + '</tbody></table></div>';
  },
};

// memory shows a worker's memory against its limit, orange from 80 %.
function memory(w) {
  if (!w.memory_bytes) return '-';
  const title = `live heap ${bytes(w.heap_live_bytes)}`;
  if (!w.memory_limit_bytes) return `<span title="${esc(title)}">${bytes(w.memory_bytes)} (no limit)</span>`;
  const frac = w.memory_bytes / w.memory_limit_bytes;
  return `<span title="${esc(title)}">${bar(frac, frac >= 0.8)} ${bytes(w.memory_bytes)} / ${bytes(w.memory_limit_bytes)}</span>`;
}

// links shows whether a subtask's sources and sinks reach their brokers.
function links(ls) {
  return (ls || []).map((l) => (l.connected
    ? `<span class="link ok" title="${esc(l.target)}">${esc(l.node)} ✓ connected</span>`
    : `<span class="link down" title="${esc(l.target + ' since ' + time(l.unreachable_since) + ': ' + (l.last_error || ''))}">${esc(l.node)} ✗ unreachable since ${esc(time(l.unreachable_since).slice(11))}</span>`)).join('<br>');
}

// build is a worker's weir version and the user operators compiled into
// its binary (weir build), one per line: id, then module and version.
function build(w) {
  let h = esc(w.version || '-');
  (w.operators || []).forEach((o) => {
    h += `<div class="operator" data-operator="${esc(o.id)}">${esc(o.id)} <span class="muted">${esc(o.module)} ${esc(o.version)}</span></div>`;
  });
  return h;
}

// ---------------------------------------------------------------- job pages

const TABS = [['', 'Job graph'], ['/checkpoints', 'Checkpoints'], ['/restarts', 'Restarts'], ['/kafka', 'Kafka']];

function jobHeader(job, tab) {
  const base = `#/jobs/${enc(job.id)}`;
  let h = `<div class="crumbs"><a href="#/">Overview</a> / job ${esc(job.id)}</div>`;
  h += `<h1>${esc(job.name)} <span class="sub">${esc(job.id)}</span> ${badge(job.state)}</h1>`;
  h += '<div class="cards">';
  h += card('Attempt', num(job.attempt));
  h += card('Restarts', num(job.restarts));
  h += card('Started', esc(time(job.started_at)), 'submitted ' + esc(time(job.submitted_at)));
  if (job.ended_at) h += card('Ended', esc(time(job.ended_at)));
  h += '</div>';
  if (job.message) h += `<p class="muted">${esc(job.message)}</p>`;
  if (job.failure_cause) h += `<p class="err">Cause: ${esc(job.failure_cause)}</p>`;
  const lf = job.last_failure;
  if (lf && lf.cause !== job.failure_cause) {
    h += `<p id="last-failure" class="err">Last failure (attempt ${num(lf.failed_attempt)}, ${esc(time(lf.detected_at))}): ${esc(lf.cause)}</p>`;
  }
  if (job.warnings && job.warnings.length) {
    h += '<ul id="job-warnings" class="warnings" aria-label="Warnings">';
    job.warnings.forEach((w) => { h += `<li>${esc(w)}</li>`; });
    h += '</ul>';
  }
  h += '<nav class="tabs" aria-label="Job">';
  TABS.forEach(([suffix, label]) => {
    const cur = suffix === tab ? ' aria-current="page"' : '';
    h += `<a href="${base}${suffix}"${cur}>${label}</a>`;
  });
  return h + '</nav>';
}

// rates derives records/s, backpressure and busy shares from two graph
// samples.
function rates(prev, g) {
  const out = {};
  if (!prev || prev.attempt !== g.attempt) return out;
  const dt = new Date(g.sampled_at) - new Date(prev.sampled_at);
  if (dt <= 0) return prev.rates || out;
  g.vertices.forEach((v) => {
    const p = prev.v[v.id];
    if (!p) return;
    out[v.id] = {
      in: Math.max(0, v.records_in - p.records_in) * 1000 / dt,
      out: Math.max(0, v.records_out - p.records_out) * 1000 / dt,
      bp: Math.min(100, Math.max(0, v.backpressured_ms - p.backpressured_ms) * 100 / (dt * Math.max(1, v.parallelism))),
      busy: Math.min(100, Math.max(0, (v.busy_ms || 0) - (p.busy_ms || 0)) * 100 / (dt * Math.max(1, v.parallelism))),
    };
  });
  return out;
}

const job = {
  async load([id], state) {
    const [j, g, st] = await Promise.all([get(`/jobs/${enc(id)}`), get(`/jobs/${enc(id)}/graph`), get(`/jobs/${enc(id)}/subtasks`)]);
    const key = 'graph:' + id;
    const prev = state[key];
    let r = rates(prev, g);
    if (prev && !Object.keys(r).length && prev.attempt === g.attempt) r = prev.rates || {};
    // keep the older sample until the counters move, so rates span a report
    const moved = !prev || prev.attempt !== g.attempt || new Date(g.sampled_at) - new Date(prev.sampled_at) >= 1000;
    if (moved) state[key] = { attempt: g.attempt, sampled_at: g.sampled_at, v: Object.fromEntries(g.vertices.map((v) => [v.id, v])), rates: r };
    return { j, g, st, r };
  },
  render({ j, g, st, r }) {
    let h = jobHeader(j, '');
    h += '<h2>Job graph</h2><div class="panel">' + jobGraph(g, r) + '</div>';
    h += '<h2>Vertices</h2><div class="panel"><table id="vertices"><thead><tr><th>Vertex</th><th>Nodes</th><th class="num">Parallelism</th><th class="num">Records in</th><th class="num">Records out</th><th class="num">In/s</th><th class="num">Out/s</th><th>Busy</th><th>Backpressure</th><th class="num">Watermark lag</th></tr></thead><tbody>';
    g.vertices.forEach((v) => {
      const x = r[v.id] || {};
      h += `<tr data-vertex="${esc(v.id)}"><td>${esc(v.id)}</td><td>${esc(v.nodes.map((n) => n.name + ' (' + n.kind + (n.connector ? ':' + n.connector : '') + ')').join(' → '))}</td><td class="num">${num(v.parallelism)}</td>`;
      h += `<td class="num">${num(v.records_in)}</td><td class="num">${num(v.records_out)}</td><td class="num">${x.in == null ? '-' : short(x.in)}</td><td class="num">${x.out == null ? '-' : short(x.out)}</td>`;
      h += `<td class="busy">${x.busy == null ? '-' : bar(x.busy / 100, x.busy >= 50) + ' ' + x.busy.toFixed(0) + '%'}</td>`;
      h += `<td>${x.bp == null ? '-' : bar(x.bp / 100, x.bp >= 10) + ' ' + x.bp.toFixed(0) + '%'}</td>`;
      h += `<td class="num lag" title="${v.watermark == null ? 'no watermark yet' : 'watermark ' + esc(new Date(v.watermark).toISOString())}">${v.event_time_lag_ms == null ? '-' : esc(dur(v.event_time_lag_ms))}</td></tr>`;
    });
    h += '</tbody></table></div>';
    h += `<h2>Subtasks <span class="muted">(attempt ${num(st.attempt)})</span></h2><div class="panel"><table id="subtasks"><thead><tr><th>Subtask</th><th>Worker</th><th>State</th><th class="num">Records in</th><th class="num">Records out</th><th class="num">Backpressured</th><th class="num">Late dropped</th><th class="num">Invalid skipped</th><th class="num">Dead-lettered</th><th>Links</th><th class="num">Keyed state</th><th>Error</th></tr></thead><tbody>`;
    const extra = {};
    (j.vertices || []).forEach((v) => (v.subtasks || []).forEach((s) => { extra[v.id + '/' + s.index] = s; }));
    st.subtasks.forEach((s) => {
      const x = extra[s.vertex + '/' + s.index] || {};
      const state = Object.values(x.state_bytes || {});
      h += `<tr><td>${esc(s.vertex)}[${s.index}/${s.parallelism}]</td><td>${esc(s.worker || '-')}</td><td>${badge(s.state)}</td><td class="num">${num(s.records_in)}</td><td class="num">${num(s.records_out)}</td><td class="num">${dur(s.backpressured_ms)}</td>`;
      h += `<td class="num">${num(s.dropped_late)}</td><td class="num">${num(s.skipped_invalid)}</td><td class="num">${num(s.dead_lettered)}</td><td class="wrap links">${links(x.links)}</td><td class="num">${state.length ? bytes(state.reduce((a, b) => a + b, 0)) : '-'}</td><td class="wrap err">${esc(s.error || '')}</td></tr>`;
    });
    return h + '</tbody></table></div>';
  },
};

// ---------------------------------------------------------------- checkpoints

function cpRow(c, jobID) {
  const type = c.savepoint ? (c.stop ? 'savepoint (stop)' : 'savepoint') : 'checkpoint';
  return `<tr data-checkpoint="${c.id}"><td><a href="#/jobs/${enc(jobID)}/checkpoints/${c.id}">${c.id}</a></td><td>${badge(c.status)}</td><td>${type}</td><td class="num">${num(c.attempt)}</td>`
    + `<td>${esc(time(c.trigger_time))}</td><td class="num">${c.status === 'IN_PROGRESS' ? '-' : dur(c.duration_ms)}</td><td class="num">${bytes(c.size_bytes)}</td>`
    + `<td class="num">${c.acknowledged}/${c.subtasks}</td><td>${c.slowest_subtask ? esc(c.slowest_subtask) + ' (' + dur(c.slowest_ms) + ')' : '-'}</td><td class="num">${dur(c.max_alignment_ms)}</td>`
    + `<td class="wrap">${c.failure_reason ? `<span class="err">${esc(c.failure_reason)}</span>: ${esc(c.failure)}` : ''}</td></tr>`;
}

function latestBox(title, c, jobID, id) {
  if (!c) return `<div class="panel" id="${id}"><h2>${title}</h2><p class="muted">none</p></div>`;
  let h = `<div class="panel" id="${id}"><h2>${title}</h2><dl class="kv">`;
  h += `<dt>Checkpoint</dt><dd><a href="#/jobs/${enc(jobID)}/checkpoints/${c.id}">#${c.id}</a> ${badge(c.status)}</dd>`;
  h += `<dt>Triggered</dt><dd>${esc(time(c.trigger_time))}</dd>`;
  if (c.status !== 'FAILED') h += `<dt>Duration</dt><dd>${dur(c.duration_ms)}</dd><dt>Size</dt><dd>${bytes(c.size_bytes)}</dd>`;
  if (c.location) h += `<dt>Location</dt><dd>${esc(c.location)}</dd>`;
  if (c.failure) h += `<dt>Failure</dt><dd class="err">${esc(c.failure_reason)}: ${esc(c.failure)}</dd>`;
  return h + '</dl></div>';
}

function summaryTable(id, rows) {
  let h = `<table id="${id}"><thead><tr><th></th><th class="num">min</th><th class="num">avg</th><th class="num">max</th></tr></thead><tbody>`;
  rows.forEach(([label, s, f]) => {
    h += s ? `<tr><td>${label}</td><td class="num">${f(s.min)}</td><td class="num">${f(s.avg)}</td><td class="num">${f(s.max)}</td></tr>` : `<tr><td>${label}</td><td colspan="3" class="muted">no data</td></tr>`;
  });
  return h + '</tbody></table>';
}

const CP_HEAD = '<thead><tr><th>ID</th><th>Status</th><th>Type</th><th class="num">Attempt</th><th>Triggered</th><th class="num">Duration</th><th class="num">Size</th><th class="num">Acked</th><th>Slowest</th><th class="num">Max alignment</th><th>Failure</th></tr></thead>';

const checkpoints = {
  async load([id]) {
    const [j, cps] = await Promise.all([get(`/jobs/${enc(id)}`), get(`/jobs/${enc(id)}/checkpoints`)]);
    return { j, cps };
  },
  render({ j, cps }, _, state) {
    const n = cps.counts, hist = cps.history, cfg = cps.config;
    let h = jobHeader(j, '/checkpoints');
    if (j.state === 'RUNNING') {
      h += `<p><button type="button" id="take-savepoint" data-action="savepoint" data-job="${esc(j.id)}">Take a savepoint</button> `;
      h += `<span id="savepoint-result" role="status">${esc(state['sp:' + j.id] || '')}</span></p>`;
    }
    h += '<div class="cards" id="checkpoint-counts">';
    h += card('Triggered', num(n.triggered)) + card('In progress', num(n.in_progress)) + card('Completed', num(n.completed)) + card('Failed', num(n.failed));
    h += '</div>';
    h += `<p class="muted">${cfg.enabled ? `Every ${dur(cfg.interval_ms)}, timeout ${dur(cfg.timeout_ms)}, min pause ${dur(cfg.min_pause_ms)}, ${cfg.tolerable_failures} tolerable failures, ${cfg.retained} retained` : 'Periodic checkpoints are off (savepoints only)'}; storage ${esc(cfg.storage)}</p>`;
    const failed = hist.find((c) => c.status === 'FAILED');
    const sp = hist.find((c) => c.savepoint && c.status === 'COMPLETED');
    h += '<div class="grid2">';
    h += latestBox('Latest completed', cps.latest, j.id, 'latest-completed');
    h += latestBox('Latest failed', failed, j.id, 'latest-failed');
    h += latestBox('Latest savepoint', sp, j.id, 'latest-savepoint');
    const r = cps.latest_restore;
    h += `<div class="panel" id="latest-restore"><h2>Latest restore</h2>${r ? `<dl class="kv"><dt>Attempt</dt><dd>${num(r.attempt)}</dd><dt>From</dt><dd>checkpoint ${r.checkpoint_id}</dd><dt>Location</dt><dd>${esc(r.location)}</dd>${r.fallback ? `<dt>Fallback</dt><dd class="err">${esc(r.fallback)}</dd>` : ''}</dl>` : '<p class="muted">the current attempt started without state</p>'}</div>`;
    h += '</div>';
    const done = hist.filter((c) => c.status === 'COMPLETED');
    h += `<h2>Summary <span class="muted">(${done.length} completed in the history)</span></h2><div class="panel">`;
    h += summaryTable('checkpoint-summary', [
      ['Duration', stats(done.map((c) => c.duration_ms)), dur],
      ['Size', stats(done.map((c) => c.size_bytes)), (x) => bytes(Math.round(x))],
      ['Max alignment', stats(done.map((c) => c.max_alignment_ms)), dur],
    ]);
    h += '</div><h2>Duration and size over time</h2><div class="panel">' + checkpointChart(hist) + '</div>';
    h += `<h2>History <span class="muted">(newest first, last 100)</span></h2><div class="panel"><table id="checkpoint-history">${CP_HEAD}<tbody>`;
    if (!hist.length) h += '<tr><td colspan="11" class="muted">No checkpoint yet.</td></tr>';
    hist.forEach((c) => { h += cpRow(c, j.id); });
    return h + '</tbody></table></div>';
  },
};

const checkpoint = {
  async load([id, cid]) {
    const [j, c] = await Promise.all([get(`/jobs/${enc(id)}`), get(`/jobs/${enc(id)}/checkpoints/${cid}`)]);
    return { j, c };
  },
  render({ j, c }) {
    let h = jobHeader(j, '/checkpoints');
    h += `<div class="crumbs"><a href="#/jobs/${enc(j.id)}/checkpoints">Checkpoints</a> / #${c.id}</div>`;
    h += `<h2 id="checkpoint-title">Checkpoint ${c.id} ${badge(c.status)}${c.savepoint ? ' <span class="badge">savepoint</span>' : ''}</h2>`;
    h += `<div class="panel"><table>${CP_HEAD}<tbody>${cpRow(c, j.id)}</tbody></table></div>`;
    const s = c.subtask_stats;
    h += '<h2>Summary over subtasks</h2><div class="panel">';
    h += summaryTable('subtask-summary', [
      ['Acknowledged after', stats(s.filter((x) => x.acknowledged).map((x) => x.ack_ms)), dur],
      ['Sync snapshot', stats(s.map((x) => x.sync_ms)), dur],
      ['Async upload', stats(s.map((x) => x.async_ms)), dur],
      ['Alignment', stats(s.map((x) => x.alignment_ms)), dur],
      ['State size', stats(s.map((x) => x.bytes)), (x) => bytes(Math.round(x))],
    ]);
    h += '</div><h2>Subtasks</h2><div class="panel"><table id="subtask-stats"><thead><tr><th>Subtask</th><th>Acknowledged</th><th>Ack time</th><th class="num">After trigger</th><th class="num">Sync</th><th class="num">Async</th><th class="num">Alignment</th><th class="num">State</th></tr></thead><tbody>';
    s.forEach((x) => {
      h += `<tr><td>${esc(x.vertex)}[${x.subtask}]</td><td>${x.acknowledged ? 'yes' : '<span class="err">no</span>'}</td><td>${esc(time(x.ack_time, true))}</td><td class="num">${x.acknowledged ? dur(x.ack_ms) : '-'}</td>`;
      h += `<td class="num">${dur(x.sync_ms)}</td><td class="num">${dur(x.async_ms)}</td><td class="num">${dur(x.alignment_ms)}</td><td class="num">${bytes(x.bytes)}</td></tr>`;
    });
    return h + '</tbody></table></div>';
  },
};

// ---------------------------------------------------------------- restarts

const STEPS = [['detected_at', 'detected'], ['cancelled_at', 'cancelled'], ['scheduled_at', 'scheduled'], ['restored_at', 'restored'], ['running_at', 'running']];

function timeline(r) {
  let h = '<ol class="timeline" aria-label="Restart timeline">';
  let prev = null;
  STEPS.forEach(([f, label], i) => {
    const t = r[f];
    if (i > 0) {
      const d = t && prev ? dur(new Date(t) - new Date(prev)) : '';
      h += `<li class="arrow" aria-hidden="true">→<br>${d ? '+' + d : ''}</li>`;
    }
    h += `<li class="step ${t ? 'done' : 'missing'}" data-step="${label}"><div class="n">${label}</div><div class="t">${t ? esc(time(t, true)) : (r.gave_up && i > 1 ? 'never (gave up)' : 'not yet')}</div></li>`;
    if (t) prev = t;
  });
  return h + '</ol>';
}

const restarts = {
  async load([id]) {
    const [j, rs] = await Promise.all([get(`/jobs/${enc(id)}`), get(`/jobs/${enc(id)}/restarts`)]);
    return { j, rs };
  },
  render({ j, rs }) {
    let h = jobHeader(j, '/restarts');
    h += `<p>Restart strategy: <strong>${esc(rs.strategy)}</strong></p>`;
    h += '<div class="panel" id="restarts">';
    if (!rs.restarts.length) h += '<p class="muted">The job has not failed.</p>';
    rs.restarts.slice().reverse().forEach((r) => {
      const total = r.restored_at ? dur(new Date(r.restored_at) - new Date(r.detected_at)) : null;
      h += `<section class="restart" data-failed-attempt="${r.failed_attempt}"><h2>Attempt ${r.failed_attempt} failed${r.attempt ? ` → attempt ${r.attempt}` : ''}${r.gave_up ? ' <span class="badge s-FAILED">gave up</span>' : ''}${total ? ` <span class="muted">(recovered in ${total})</span>` : ''}</h2>`;
      h += `<dl class="kv"><dt>Cause</dt><dd class="err">${esc(r.cause)}</dd>`;
      if (r.task) h += `<dt>Subtask</dt><dd>${esc(r.task)}</dd>`;
      if (r.worker) h += `<dt>Worker</dt><dd>${esc(r.worker)}</dd>`;
      h += `<dt>Delay</dt><dd>${dur(r.delay_ms)}</dd>`;
      h += `<dt>Restored from</dt><dd>${r.restored_from ? `checkpoint ${r.restored_from} (${esc(r.location)})` : 'no checkpoint'}</dd>`;
      if (r.fallback) h += `<dt>Fallback</dt><dd class="err">${esc(r.fallback)}</dd>`;
      h += '</dl>' + timeline(r) + '</section>';
    });
    return h + '</div>';
  },
};

// ---------------------------------------------------------------- kafka

const kafka = {
  async load([id]) {
    const [j, k] = await Promise.all([get(`/jobs/${enc(id)}`), get(`/jobs/${enc(id)}/kafka`)]);
    return { j, k };
  },
  render({ j, k }) {
    let h = jobHeader(j, '/kafka');
    h += '<div class="cards" id="kafka-cards">' + card('Total lag', num(k.total_lag), 'records', 'total-lag');
    h += card('Positions from', k.basis === 'checkpoint' ? `checkpoint ${k.checkpoint_id}` : 'none yet', k.checkpoint_at ? esc(time(k.checkpoint_at)) : 'no completed checkpoint');
    h += '</div><p class="muted">Lag is the partition\'s end offset (last stable offset for read_committed sources) minus the next offset recorded in the latest completed checkpoint: what a restart now would read again.</p>';
    if (!k.sources.length) h += '<div class="panel"><p class="muted">The job has no Kafka source.</p></div>';
    k.sources.forEach((s) => {
      const maxLag = Math.max(1, ...s.partitions.map((p) => p.lag || 0));
      h += `<h2>${esc(s.node)} <span class="muted">topic ${esc(s.topic)} on ${esc(s.brokers.join(', '))}, ${esc(s.isolation)}, lag ${num(s.total_lag)}</span></h2>`;
      if (s.error) h += `<p class="err">${esc(s.error)}</p>`;
      h += `<div class="panel"><table class="kafka-lag" data-source="${esc(s.node)}"><thead><tr><th class="num">Partition</th><th class="num">Subtask</th><th class="num">Checkpointed offset</th><th class="num">End offset</th><th class="num">Lag</th><th></th></tr></thead><tbody>`;
      s.partitions.forEach((p) => {
        h += `<tr data-partition="${p.partition}"><td class="num">${p.partition}</td><td class="num">${esc(s.vertex)}[${p.subtask}]</td><td class="num">${num(p.offset)}</td><td class="num">${num(p.end_offset)}</td><td class="num">${num(p.lag)}</td><td>${p.lag == null ? '' : bar(p.lag / maxLag, true)}</td></tr>`;
      });
      h += '</tbody></table></div>';
    });
    return h;
  },
};

export const notFound = {
  async load() { return null; },
  render(_, __) { return `<h1>Not found</h1><p>No page at <code>${esc(location.hash)}</code>.</p><p><a href="#/">Back to the overview</a></p>`; },
};

// actions run when a button with data-action is pressed; the page then
// refreshes.
export const actions = {
  async savepoint({ job }, state) {
    try {
      const sp = await post(`/jobs/${enc(job)}/savepoints`, { stop: false });
      state['sp:' + job] = `Savepoint requested (${sp.request_id}); it appears in the history below.`;
    } catch (e) {
      state['sp:' + job] = 'Savepoint refused: ' + e.message;
    }
  },
};

export const views = { overview, job, checkpoints, checkpoint, restarts, kafka };
