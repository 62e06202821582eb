// Formatting helpers. Every value that reaches innerHTML goes through esc.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

// time renders an RFC 3339 time as "YYYY-MM-DD HH:MM:SS.mmm" in UTC.
export function time(iso, withMs = false) {
  if (!iso) return '-';
  const d = new Date(iso);
  if (isNaN(d)) return '-';
  const s = d.toISOString().replace('T', ' ').replace('Z', '');
  return withMs ? s : s.slice(0, 19);
}

// ago renders how long before now a time was.
export function ago(iso, now = Date.now()) {
  if (!iso) return '-';
  const d = Math.max(0, now - new Date(iso).getTime());
  return dur(d) + ' ago';
}

// dur renders milliseconds.
export function dur(ms) {
  if (ms == null || isNaN(ms)) return '-';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  const m = Math.floor(ms / 60000), s = Math.round((ms % 60000) / 1000);
  if (m < 60) return `${m}m ${s}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function bytes(n) {
  if (n == null || isNaN(n)) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
}

export function num(n) {
  if (n == null || isNaN(n)) return '-';
  return Number(n).toLocaleString('en-US');
}

// short renders a count compactly: 1234 -> 1.2k.
export function short(n) {
  if (n == null || isNaN(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (a >= 1e3) return (n / 1e3).toFixed(1) + 'k';
  return String(Math.round(n * 10) / 10);
}

export function badge(state) {
  return `<span class="badge s-${esc(state)}">${esc(state)}</span>`;
}

// stats returns min, avg and max of the numbers in xs (null when empty).
export function stats(xs) {
  const v = xs.filter((x) => x != null && !isNaN(x));
  if (!v.length) return null;
  const sum = v.reduce((a, b) => a + b, 0);
  return { min: Math.min(...v), avg: sum / v.length, max: Math.max(...v), n: v.length };
}
