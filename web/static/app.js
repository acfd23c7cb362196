// app.js: sign-in and page routing for bastion's operator UI. Pages live in
// the URL fragment: #/recordings[?subject=&denied=1], #/recordings/<id>,
// #/approvals.
import { $, api, AuthError, hooks, showMessage, token } from './util.js';
import { leavePlayer, showPlayer, showRecordings } from './recordings.js';
import { leaveApprovals, showApprovals } from './approvals.js';

const pages = ['login', 'recordings', 'player-page', 'approvals'];

// generation counts page changes, so a slow response for a page the
// operator has left is dropped instead of drawn.
let generation = 0;

function leave() {
  generation++;
  leavePlayer();
  leaveApprovals();
  for (const p of pages) $(p).hidden = true;
  showMessage('error', '');
}

function signedOut(msg) {
  token.clear();
  leave();
  $('nav').hidden = true;
  $('who').hidden = true;
  $('login').hidden = false;
  showMessage('login-error', msg);
  $('token').focus();
}

async function whoami() {
  const op = await api('me');
  $('who-name').textContent = op.subject + (op.kind ? ' (' + op.kind + ')' : '');
  $('who').hidden = false;
  $('nav').hidden = false;
}

function route() {
  if (!token.get()) {
    signedOut('');
    return;
  }
  leave();
  const g = generation;
  const isCurrent = () => g === generation;
  const hash = location.hash || '#/recordings';
  let m;
  let task;
  if (hash === '#/approvals') {
    task = showApprovals(isCurrent);
  } else if ((m = /^#\/recordings\/([A-Za-z0-9_-]{1,64})$/.exec(hash))) {
    task = showPlayer(m[1], isCurrent);
  } else {
    const q = new URLSearchParams(hash.startsWith('#/recordings?') ? hash.slice('#/recordings?'.length) : '');
    task = showRecordings(q, isCurrent);
  }
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  }
  task.catch((e) => {
    if (e instanceof AuthError || !isCurrent()) return;
    showMessage('error', e.message);
  });
}

async function signIn(ev) {
  ev.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  $('token').value = '';
  token.set(t);
  try {
    await whoami();
  } catch (e) {
    if (!(e instanceof AuthError)) {
      token.clear();
      showMessage('login-error', e.message);
    }
    return;
  }
  route();
}

function start() {
  hooks.unauthorized = signedOut;
  $('login-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => signedOut(''));
  window.addEventListener('hashchange', route);
  if (!token.get()) {
    signedOut('');
    return;
  }
  whoami().then(route, (e) => {
    if (!(e instanceof AuthError)) signedOut(e.message);
  });
}

start();
