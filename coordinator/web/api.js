// A small client for /api/v1: every failure becomes an Error whose message
// is the API's error message.
export async function get(path) {
  const resp = await fetch('/api/v1' + path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error(body?.error?.message || `HTTP ${resp.status} for ${path}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

// post sends a JSON body and returns the answer's JSON.
export async function post(path, body) {
  const resp = await fetch('/api/v1' + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body), cache: 'no-store',
  });
  let out = null;
  try { out = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error(out?.error?.message || `HTTP ${resp.status} for ${path}`);
    err.status = resp.status;
    throw err;
  }
  return out;
}
