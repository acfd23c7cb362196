// recordings.js: the session list and the player page, where the asciinema
// web player plays a recording beside its command index.
import { $, api, el, fmtOffset, fmtTime, showMessage } from './util.js';

// player is the asciinema player on the player page, or null.
let player = null;

// showRecordings lists sessions matching the filter q (subject, denied).
export async function showRecordings(q, isCurrent) {
  $('recordings').hidden = false;
  $('filter-subject').value = q.get('subject') || '';
  $('filter-denied').checked = q.get('denied') === '1';
  const data = await api('sessions' + (q.toString() ? '?' + q.toString() : ''));
  if (!isCurrent()) return;
  const rows = data.sessions.map((s) => {
    const link = el('a', { href: '#/recordings/' + encodeURIComponent(s.id) }, fmtTime(s.started));
    const tr = el('tr', { dataset: { id: s.id } },
      el('td', {}, link),
      el('td', {}, s.ended ? fmtTime(s.ended) : '—'),
      el('td', { class: 'subject' }, s.subject),
      el('td', {}, s.kind),
      el('td', {}, s.principal),
      el('td', {}, s.source),
      el('td', { class: 'num' }, s.commands),
      el('td', { class: s.denied > 0 ? 'num decision-deny' : 'num' }, s.denied));
    tr.addEventListener('click', () => { location.hash = link.getAttribute('href'); });
    return tr;
  });
  $('sessions').tBodies[0].replaceChildren(...rows);
  let empty = '';
  if (!data.enabled) empty = 'Recordings are not enabled on this bastion.';
  else if (rows.length === 0) empty = q.toString() ? 'No session matches the filter.' : 'No sessions recorded yet.';
  showMessage('recordings-empty', empty);
  $('sessions').hidden = rows.length === 0;
}

function applyFilter(ev) {
  ev.preventDefault();
  const q = new URLSearchParams();
  const subject = $('filter-subject').value.trim();
  if (subject) q.set('subject', subject);
  if ($('filter-denied').checked) q.set('denied', '1');
  const hash = '#/recordings' + (q.toString() ? '?' + q.toString() : '');
  if (location.hash === hash) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}

// showPlayer loads session id's command index and recording and starts
// the player.
export async function showPlayer(id, isCurrent) {
  $('player-page').hidden = false;
  $('player-title').textContent = 'Session ' + id;
  $('player-meta').textContent = '';
  $('commands').tBodies[0].replaceChildren();
  const [idx, castRes] = await Promise.all([
    api('sessions/' + id),
    api('sessions/' + id + '/cast', { raw: true }),
  ]);
  const cast = await castRes.text();
  if (!isCurrent()) return;

  const s = idx.session;
  $('player-title').textContent = s.subject + ' — session ' + s.id;
  $('player-meta').textContent = [
    s.kind, 'as ' + s.principal, 'from ' + s.source,
    'started ' + fmtTime(s.started), s.ended ? 'ended ' + fmtTime(s.ended) : 'not ended',
    s.commands + ' commands', s.denied + ' denied',
  ].join(' · ');

  const rows = idx.commands.map((c) => {
    const seek = el('button', { type: 'button', class: 'seek', title: 'Play from here' }, fmtOffset(c.offset));
    const tr = el('tr', { dataset: { n: c.n, offset: c.offset } },
      el('td', {}, seek),
      el('td', {}, el('code', {}, c.cmd)),
      el('td', { class: 'decision-' + c.decision }, c.decision),
      el('td', {}, c.rule),
      el('td', { class: 'num' }, c.exit === null || c.exit === undefined ? '—' : c.exit));
    tr.addEventListener('click', () => seekTo(c.offset, tr));
    return tr;
  });
  $('commands').tBodies[0].replaceChildren(...rows);
  $('commands-empty').hidden = rows.length > 0;
  $('commands').hidden = rows.length === 0;

  // The index's markers replace the ones in the file, whose labels are
  // bastion's JSON. An infinite idleTimeLimit keeps the player's clock
  // equal to the recording's, so index offsets are player times.
  player = window.AsciinemaPlayer.create({ data: cast }, $('player'), {
    autoPlay: true,
    preload: true,
    fit: 'width',
    idleTimeLimit: Infinity,
    markers: idx.commands.map((c) => [c.offset, '#' + c.n + ' ' + c.cmd + ' (' + c.decision + ')']),
  });
  // Exposed for the browser tests and for poking at from the console.
  window.bastionPlayer = player;
}

async function seekTo(offset, tr) {
  if (!player) return;
  for (const r of $('commands').tBodies[0].rows) r.classList.toggle('current', r === tr);
  await player.seek(offset);
  await player.play();
}

// leavePlayer stops and removes the player when its page closes.
export function leavePlayer() {
  if (player) {
    player.dispose();
    player = null;
  }
  delete window.bastionPlayer;
  $('player').replaceChildren();
}

$('filter').addEventListener('submit', applyFilter);
