// A small client for /api/v1: every failure becomes an Error whose message
// is the API's error message and whose status is the HTTP status.
//
// The bearer token lives in sessionStorage: it is gone when the tab closes,
// and no other origin (nor another tab) can read it.
const KEY = 'weir.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(t) { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); }

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function send(path, init) {
  const resp = await fetch('/api/v1' + path, { ...init, cache: 'no-store' });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error(body?.error?.message || `HTTP ${resp.status} for ${path}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

export async function get(path) {
  return send(path, { headers: headers() });
}

// post sends a JSON body and returns the answer's JSON.
export async function post(path, body) {
  return send(path, { method: 'POST', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(body) });
}
