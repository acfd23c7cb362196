// util.js: the API client and small DOM and formatting helpers shared by
// the pages. Data only ever reaches the page through textContent, never as
// HTML.

const TOKEN_KEY = 'bastion.token';

// AuthError means the request was refused for want of a valid token; the
// sign-in prompt is already showing when it is thrown.
export class AuthError extends Error {}

// hooks.unauthorized is called on a 401; app.js sets it.
export const hooks = { unauthorized: (msg) => {} };

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// api calls GET or POST /ui/api/<path> with the bearer token and returns
// the decoded JSON, or the Response itself when opts.raw is set. A refusal
// throws an Error carrying the server's message.
export async function api(path, opts = {}) {
  const t = token.get();
  if (!t) {
    hooks.unauthorized('');
    throw new AuthError('not signed in');
  }
  const headers = new Headers();
  headers.set('Authorization', 'Bearer ' + t);
  let body;
  if (opts.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(opts.json);
  }
  const res = await fetch('api/' + path, {
    method: opts.method || 'GET',
    headers,
    body,
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  if (res.status === 401) {
    hooks.unauthorized('The token was refused or has expired. Sign in again.');
    throw new AuthError('unauthorized');
  }
  if (!res.ok) {
    let msg = res.status + ' ' + res.statusText;
    try {
      const j = await res.json();
      if (j && typeof j.error === 'string') msg = j.error;
    } catch (_) {
      // not JSON: keep the status line
    }
    throw new Error(msg);
  }
  return opts.raw ? res : res.json();
}

export function $(id) {
  return document.getElementById(id);
}

// el builds an element; string children become text nodes.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function showMessage(id, msg) {
  const p = $(id);
  p.textContent = msg || '';
  p.hidden = !msg;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// fmtTime shows an RFC 3339 time as "YYYY-MM-DD hh:mm:ss" in UTC.
export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return s;
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
    pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + 'Z';
}

// fmtOffset shows seconds from the start of a recording as m:ss.s.
export function fmtOffset(sec) {
  const tenths = Math.floor(sec * 10);
  const m = Math.floor(tenths / 600);
  const s = (tenths % 600) / 10;
  return m + ':' + (s < 10 ? '0' : '') + s.toFixed(1);
}

// fmtDuration shows milliseconds as "1h 02m", "3m 05s" or "12s".
export function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s >= 3600) return Math.floor(s / 3600) + 'h ' + pad(Math.floor(s / 60) % 60) + 'm';
  if (s >= 60) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
  return s + 's';
}
