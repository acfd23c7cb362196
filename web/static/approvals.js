// approvals.js: the approval requests page, with Approve and Deny buttons.
// The server enforces the rules (four-eyes, already decided, expired); this
// page shows its refusals as they come.
import { $, api, AuthError, el, fmtDuration, showMessage } from './util.js';

const REFRESH_MS = 10000;

let timer = null;
let current = () => false; // the isCurrent of the showing page
let denying = null; // the request the deny dialog is about

export async function showApprovals(isCurrent) {
  current = isCurrent;
  $('approvals').hidden = false;
  showMessage('approvals-error', '');
  $('approvals-status').textContent = '';
  await load();
  if (isCurrent() && timer === null) {
    timer = setInterval(() => {
      if (!$('deny-dialog').open) load().catch(showLoadError);
    }, REFRESH_MS);
  }
}

export function leaveApprovals() {
  current = () => false;
  if (timer !== null) {
    clearInterval(timer);
    timer = null;
  }
  if ($('deny-dialog').open) $('deny-dialog').close();
}

function showLoadError(e) {
  if (e instanceof AuthError || !current()) return;
  showMessage('approvals-error', e.message);
}

async function load() {
  const isCurrent = current;
  const data = await api('approvals');
  if (!isCurrent()) return;
  const now = Date.parse(data.now);
  const rows = data.approvals.map((a) => row(a, now));
  $('approval-list').tBodies[0].replaceChildren(...rows);
  let empty = '';
  if (!data.enabled) empty = 'Approvals are not enabled on this bastion.';
  else if (rows.length === 0) empty = 'No approval requests.';
  showMessage('approvals-empty', empty);
  $('approval-list').hidden = rows.length === 0;
}

function row(a, now) {
  const why = el('td', { class: 'why' });
  if (a.agent_reason) why.append(el('div', {}, 'Requester: ', el('q', {}, a.agent_reason)));
  why.append(el('div', {}, 'Policy: ' + (a.reason || '(no reason)') + (a.rule ? ' [rule ' + a.rule + ']' : '')));
  // Every part of the command that needs the approval, not only the first.
  if (a.parts && a.parts.length > 1) {
    why.append(el('div', {}, 'Needs approval:'), el('ul', { class: 'parts' }, ...a.parts.map((p) =>
      el('li', {}, el('code', { class: 'cmd' }, p.text), ' [rule ' + p.rule + ']' + (p.reason ? ': ' + p.reason : '')))));
  }

  const actions = el('td', { class: 'actions' });
  if (a.status === 'pending') {
    const approve = el('button', { type: 'button', class: 'approve' }, 'Approve');
    approve.addEventListener('click', () => decide(a, 'approve', ''));
    const deny = el('button', { type: 'button', class: 'deny' }, 'Deny');
    deny.addEventListener('click', () => openDeny(a));
    actions.append(approve, deny);
  }

  let age = fmtDuration(now - Date.parse(a.created));
  if (a.status === 'pending' && a.expires) {
    age += ' (expires in ' + fmtDuration(Date.parse(a.expires) - now) + ')';
  }
  const session = a.session_id
    ? el('a', { href: '#/recordings/' + encodeURIComponent(a.session_id) }, a.session_id)
    : '—';
  return el('tr', { dataset: { id: a.id } },
    el('td', { class: 'age' }, age),
    el('td', {}, el('code', { class: 'cmd' }, a.command),
      a.sha256 ? el('div', { class: 'sha' }, 'sha256 ' + a.sha256) : null),
    el('td', {}, a.subject + (a.kind ? ' (' + a.kind + ')' : '')),
    why,
    el('td', { class: 'session' }, session),
    el('td', { class: 'status' }, a.status),
    actions);
}

async function decide(a, verb, comment) {
  showMessage('approvals-error', '');
  $('approvals-status').textContent = '';
  const isCurrent = current;
  try {
    await api('approvals/' + encodeURIComponent(a.id) + '/' + verb, { method: 'POST', json: { comment } });
  } catch (e) {
    if (e instanceof AuthError || !isCurrent()) return;
    showMessage('approvals-error', 'Could not ' + verb + ' request ' + a.id + ': ' + e.message);
    return;
  }
  if (!isCurrent()) return;
  $('approvals-status').textContent = (verb === 'approve' ? 'Approved ' : 'Denied ') + a.id + '.';
  await load().catch(showLoadError);
}

function openDeny(a) {
  denying = a;
  $('deny-id').textContent = a.id;
  $('deny-command').textContent = a.command;
  $('deny-comment').value = '';
  $('deny-dialog').showModal();
  $('deny-comment').focus();
}

$('deny-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const comment = $('deny-comment').value.trim();
  if (!comment || !denying) return;
  const a = denying;
  denying = null;
  $('deny-dialog').close();
  decide(a, 'deny', comment);
});
$('deny-cancel').addEventListener('click', () => {
  denying = null;
  $('deny-dialog').close();
});
$('approvals-refresh').addEventListener('click', () => load().catch(showLoadError));
