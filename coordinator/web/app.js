// The weir status page: hash routes, one view per route, refreshed by
// polling the REST API (no full reloads).
import { views, notFound, actions } from './views.js';
import { get, token, setToken } from './api.js';

const main = document.getElementById('main');
const status = document.getElementById('status');
const refresh = document.getElementById('refresh');
const logout = document.getElementById('logout');
const insecure = document.getElementById('insecure');

// Routes: the first whose pattern matches the hash wins.
const routes = [
  [/^#?\/?$/, 'overview'],
  [/^#\/jobs\/([^/]+)$/, 'job'],
  [/^#\/jobs\/([^/]+)\/checkpoints$/, 'checkpoints'],
  [/^#\/jobs\/([^/]+)\/checkpoints\/(\d+)$/, 'checkpoint'],
  [/^#\/jobs\/([^/]+)\/restarts$/, 'restarts'],
  [/^#\/jobs\/([^/]+)\/kafka$/, 'kafka'],
];

function route() {
  const h = location.hash || '#/';
  for (const [re, name] of routes) {
    const m = h.match(re);
    if (m) return { name, params: m.slice(1).map(decodeURIComponent), hash: h };
  }
  return { name: 'notfound', params: [], hash: h };
}

let gen = 0;        // bumps on every navigation; stale answers are dropped
let timer = null;
const state = {};  // per-view memory across refreshes (previous samples)

async function show(navigated) {
  const my = ++gen;
  clearTimeout(timer);
  const r = route();
  const view = views[r.name] || notFound;
  let html;
  try {
    const data = await view.load(r.params, state);
    if (my !== gen) return;
    html = view.render(data, r.params, state);
    setStatus('updated ' + new Date().toISOString().slice(11, 19) + ' UTC');
  } catch (e) {
    if (my !== gen) return;
    // Without a valid token nothing is shown but the login form, and
    // polling stops until someone logs in.
    if (e.status === 401) {
      showLogin(token() ? 'The coordinator refused this token: ' + e.message : '');
      setStatus('');
      return;
    }
    // A refresh that fails keeps the page as it was; the status says why.
    if (navigated || e.status === 404) {
      html = `<h1>${e.status === 404 ? 'Not found' : 'Error'}</h1><p class="err">${escapeText(e.message)}</p><p><a href="#/">Back to the overview</a></p>`;
    }
    setStatus('error: ' + e.message, true);
  }
  if (html != null) replace(html, navigated);
  document.querySelectorAll('.top nav a').forEach((a) => {
    if (r.name === 'overview') a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  schedule(my);
}

function schedule(my) {
  const every = Number(refresh.value);
  // A hidden tab does not poll; it refreshes when shown again.
  if (every > 0 && !document.hidden) timer = setTimeout(() => { if (my === gen) show(false); }, every);
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) show(false); });

// replace swaps the page content, keeping keyboard focus on the same link
// or button across refreshes; on navigation focus moves to the content.
let shown = '';
function replace(html, navigated) {
  // Unchanged content is left alone: no flicker, selections survive.
  if (!navigated && html === shown) return;
  shown = html;
  const a = document.activeElement;
  const key = a && main.contains(a) ? (a.getAttribute('href') || a.id) : null;
  main.innerHTML = html;
  if (navigated) {
    document.title = (main.querySelector('h1')?.textContent || 'weir') + ' · weir';
    main.focus({ preventScroll: true });
    return;
  }
  if (key) {
    const el = main.querySelector(`[href="${CSS.escape(key)}"]`) || document.getElementById(key);
    if (el) el.focus({ preventScroll: true });
  }
}

// showLogin replaces the page with a token prompt: no data is on the page
// while it shows.
function showLogin(msg) {
  gen++;
  clearTimeout(timer);
  shown = '';
  logout.hidden = true;
  main.innerHTML = `<h1>Log in</h1>
<form id="login" class="panel login" autocomplete="off">
  <p>This coordinator wants a token (<code>weir token create</code>; <code>weir dev</code> keeps one in <code>DATA-DIR/admin.token</code>).
  It is kept in this tab only.</p>
  ${msg ? `<p class="err" id="login-error" role="alert">${escapeText(msg)}</p>` : ''}
  <label for="token">Token</label>
  <input id="token" name="token" type="password" required spellcheck="false" autocomplete="off">
  <button id="login-submit" type="submit">Log in</button>
</form>`;
  document.title = 'Log in · weir';
  main.querySelector('#token').focus();
}

main.addEventListener('submit', (ev) => {
  if (ev.target.id !== 'login') return;
  ev.preventDefault();
  setToken(ev.target.token.value.trim());
  start();
});

logout.addEventListener('click', () => {
  setToken('');
  showLogin('');
});

// start shows the page for the current token; once a read succeeds, the
// header says whether the coordinator wants tokens at all.
async function start() {
  try {
    const ov = await get('/overview');
    const openREST = (ov.insecure_reasons || []).includes('REST API without tokens');
    insecure.hidden = !openREST;
    logout.hidden = !token() || openREST;
  } catch (e) {
    if (e.status === 401) { showLogin(token() ? 'The coordinator refused this token: ' + e.message : ''); return; }
  }
  show(true);
}

function setStatus(text, err = false) {
  status.textContent = text;
  status.classList.toggle('err', err);
}

function escapeText(s) {
  const d = document.createElement('div');
  d.textContent = s;
  return d.innerHTML;
}

// Buttons are re-rendered by refreshes, so one listener serves them all.
main.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button[data-action]');
  if (!b || !actions[b.dataset.action]) return;
  b.disabled = true;
  await actions[b.dataset.action](b.dataset, state);
  show(false);
});

window.addEventListener('hashchange', () => { window.scrollTo(0, 0); show(true); });
refresh.addEventListener('change', () => show(false));
start();
