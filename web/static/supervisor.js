// supervisor.js — live team grid, team summary, queue tiles and the
// supervisor call actions (silent monitor, barge-in, drop participant).
import { RelayClient, apiErrors } from '/static/relay-client.js';
import { $, h, since, clockEl, tickClocks, stateLabel, showError, showLink, showLinkBanner, Upstream, showUpstream } from '/static/ui.js';
import { explainError, myParticipant, otherParty, callKind, partLabel } from '/static/finesse-text.js';

const relay = new RelayClient();
window.relay = relay;
const upstream = new Upstream();
const teams = new Map();  // node -> team
const queues = new Map(); // node -> queue
let me = null;            // the supervisor's own User
let myDialogs = [];
const rowErrors = new Map(); // loginId -> error

const finesseOK = () => relay.link === 'up' && upstream.view().actionsOK;

async function act(fn, onErr) {
  try {
    const { requestId } = await fn();
    const ev = await relay.awaitEvent(requestId).catch(() => null);
    const errs = ev && apiErrors(ev.data);
    if (errs) { onErr(errs); return null; }
    return ev || {};
  } catch (e) { onErr(e); return null; }
}

// Summary order: what a supervisor scans for first.
const SUMMARY = ['READY', 'TALKING', 'HOLD', 'RESERVED', 'WORK', 'WORK_READY', 'NOT_READY', 'LOGOUT'];

function members() {
  const all = [];
  for (const team of teams.values()) all.push(...(team.users || []));
  return all;
}

function renderSummary() {
  const counts = new Map();
  for (const u of members()) counts.set(u.state, (counts.get(u.state) || 0) + 1);
  const loggedIn = members().filter(u => u.state !== 'LOGOUT').length;
  $('#summary').replaceChildren(
    h('div', { class: 'sum-item', 'data-summary': 'SIGNED_IN' }, h('span', { class: 'big' }, loggedIn), h('span', { class: 'muted small' }, 'signed in')),
    ...SUMMARY.filter(s => counts.get(s)).map(s => h('div', { class: 'sum-item', 'data-summary': s },
      h('span', { class: 'big' }, counts.get(s)), h('span', { class: 'dot small', 'data-agent-state': s }, stateLabel(s)))));
}

function renderTeam() {
  const ok = finesseOK();
  const myExt = me && me.extension;
  const canMonitor = ok && me && me.state !== 'LOGOUT' && !myDialogs.some(d => myParticipant(d, myExt).state === 'ACTIVE');
  const rows = members().map(u => {
    const rc = u.reasonCode;
    const s = u.state;
    const err = h('div', { class: 'action-error hidden', id: `row-err-${u.loginId}` });
    if (rowErrors.has(u.loginId)) showError(err, rowErrors.get(u.loginId));
    const onErr = e => { rowErrors.set(u.loginId, e); renderTeam(); };
    const run = fn => { rowErrors.delete(u.loginId); act(fn, onErr); };
    const stateCell = h('td', { 'data-label': 'State' }, h('span', { class: 'dot', 'data-agent-state': s }, stateLabel(s)),
      u.pendingState ? h('span', { class: 'pending-tag', 'data-pending-state': u.pendingState }, ` → ${stateLabel(u.pendingState)} pending`) : null);
    return h('tr', { 'data-agent': u.loginId },
      h('th', { scope: 'row', 'data-label': 'Agent' }, u.loginId),
      h('td', { 'data-label': 'Name' }, [u.firstName, u.lastName].filter(Boolean).join(' ')),
      h('td', { 'data-label': 'Extension' }, u.extension || ''),
      stateCell,
      h('td', { class: 'muted', 'data-label': 'Reason', 'data-reason': '' }, rc && rc.label || ''),
      h('td', { 'data-label': 'Time in state' }, clockEl(u.stateChangeTime)),
      h('td', { 'data-label': 'Actions' }, h('div', { class: 'row' },
        h('button', { type: 'button', 'aria-describedby': err.id, disabled: !ok || !['NOT_READY', 'WORK', 'WORK_READY'].includes(s), onclick: () => run(() => relay.setAgentState(u.loginId, 'READY')) }, 'Ready'),
        h('button', { type: 'button', 'aria-describedby': err.id, disabled: !ok || !['READY', 'WORK', 'WORK_READY'].includes(s), onclick: () => run(() => relay.setAgentState(u.loginId, 'NOT_READY')) }, 'Not ready'),
        h('button', { type: 'button', class: 'danger', 'aria-describedby': err.id, disabled: !ok || s === 'LOGOUT' || u.pendingState === 'LOGOUT', onclick: () => run(() => relay.setAgentState(u.loginId, 'LOGOUT')) }, 'Sign out'),
        s === 'TALKING' && u.loginId !== relay.loginId ? h('button', { type: 'button', 'data-action': 'SILENT_MONITOR', 'aria-describedby': err.id, disabled: !canMonitor,
          title: me && me.state === 'LOGOUT' ? 'Sign in to your phone first' : '', onclick: () => run(() => relay.silentMonitor(myExt, u.extension)) }, 'Monitor') : null), err));
  });
  $('#team tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No team members'))]));
  renderSummary();
}

function renderMyPhone() {
  const box = $('#myphone');
  const err = $('#sup-error');
  const onErr = e => showError(err, e);
  if (!me) return;
  if (me.state === 'LOGOUT') {
    const ext = h('input', { id: 'sup-ext', value: me.extension || '', size: 10, 'aria-label': 'Your extension' });
    box.replaceChildren('To monitor or barge in, sign in to your phone: ', ext,
      h('button', { type: 'button', class: 'primary', id: 'sup-login', disabled: !finesseOK(), onclick: () => { showError(err, null); act(() => relay.login(ext.value.trim()), onErr); } }, 'Sign in to phone'));
  } else {
    box.replaceChildren(h('span', { class: 'dot', 'data-agent-state': me.state }, `Your phone (${me.extension}): ${stateLabel(me.state)}`));
  }
  const myExt = me.extension;
  const ok = finesseOK();
  $('#mycalls').replaceChildren(...myDialogs.map(d => {
    const p = myParticipant(d, myExt);
    const acts = new Set(p.actions || []);
    const others = (d.participants || []).filter(x => x.mediaAddress !== myExt && ['ACTIVE', 'HELD', 'ALERTING'].includes(x.state));
    return h('article', { class: 'dialog', 'data-dialog-id': d.id, 'data-call-type': (d.mediaProperties || {}).callType || '' },
      h('div', { class: 'head' }, h('span', { class: 'num' }, callKind(d, myExt) === 'Silent monitor' ? `Monitoring ${d.toAddress}` : `${callKind(d, myExt)} · ${otherParty(d, myExt)}`),
        h('span', { class: 'badge ' + p.state }, partLabel(p.state))),
      h('div', { class: 'small' }, clockEl(p.startTime, 'Call ')),
      h('div', { class: 'row' },
        acts.has('BARGE_CALL') ? h('button', { type: 'button', class: 'primary', 'data-action': 'BARGE_CALL', disabled: !ok, onclick: () => { showError(err, null); act(() => relay.barge(myExt, d.toAddress, d.id), onErr); } }, 'Barge in') : null,
        acts.has('PARTICIPANT_DROP') ? others.map(o => h('button', { type: 'button', 'data-action': 'PARTICIPANT_DROP', 'data-target': o.mediaAddress, disabled: !ok,
          onclick: () => { showError(err, null); act(() => relay.participantDrop(d.id, o.mediaAddress), onErr); } }, `Drop ${o.mediaAddress}`)) : null,
        acts.has('DROP') ? h('button', { type: 'button', class: 'danger', 'data-action': 'DROP', disabled: !ok, onclick: () => { showError(err, null); act(() => relay.drop(d.id, myExt), onErr); } },
          callKind(d, myExt) === 'Silent monitor' ? 'Stop monitoring' : 'Leave call') : null));
  }));
}

function renderQueues() {
  if (!queues.size) return;
  $('#queues').replaceChildren(...[...queues.values()].map(q => {
    const st = q.statistics || {};
    const talking = (st.agentsTalkingInbound || 0) + (st.agentsTalkingOutbound || 0) + (st.agentsTalkingInternal || 0);
    return h('div', { class: 'panel tile', 'data-queue': q.name },
      h('div', { class: 'muted small' }, q.name),
      h('div', { class: 'big' }, st.callsInQueue ?? 0), h('div', { class: 'muted small' }, 'calls waiting'),
      h('div', { class: 'kv' }, h('span', {}, 'Longest wait'), clockEl(st.startTimeOfLongestCallInQueue || '')),
      h('div', { class: 'kv' }, h('span', {}, 'Ready'), h('span', {}, st.agentsReady ?? 0)),
      h('div', { class: 'kv' }, h('span', {}, 'Talking'), h('span', {}, talking)),
      h('div', { class: 'kv' }, h('span', {}, 'Not ready'), h('span', {}, st.agentsNotReady ?? 0)));
  }));
}

const render = () => { renderTeam(); renderMyPhone(); };

relay.onState((node, data) => {
  if (/\/Team\/[^/]+\/Users$/.test(node)) { teams.set(node, data); renderTeam(); }
  else if (/\/Queue\/[^/]+$/.test(node)) { queues.set(node, data); renderQueues(); }
  else if (node === `/finesse/api/User/${relay.loginId}` && data && data.loginId) {
    me = data;
    $('#who').textContent = [data.firstName, data.lastName].filter(Boolean).join(' ') || data.loginId;
    $('#who-ext').textContent = data.extension ? `ext. ${data.extension}` : '';
    for (const t of data.teams || []) relay.subscribe(`/finesse/api/Team/${t.id}/Users`);
    render();
  } else if (node === `/finesse/api/User/${relay.loginId}/Dialogs`) {
    myDialogs = Array.isArray(data) ? data : (data && data.dialogs) || [];
    render();
  }
});
relay.onEvent(ev => {
  if (/\/Team\/[^/]+\/Users$/.test(ev.node) && ev.data && ev.data.loginId && ev.data.state) {
    $('#announce').textContent = `${ev.data.firstName || ev.data.loginId}: ${stateLabel(ev.data.state)}`;
  }
});
relay.onLink(link => {
  showLink($('#conn'), link); showLinkBanner($('#relay-banner'), link); render();
  if (link === 'signed_out' || link === 'expired') location.href = '/login?return=/supervisor';
});
relay.onStatus(st => { showUpstream($('#upstream'), $('#finesse-banner'), upstream.update(st)); render(); });
setInterval(() => tickClocks(), 1000);

(async () => {
  try { await relay.resumeSession(); } catch { location.href = '/login?return=/supervisor'; return; }
  $('#who').textContent = relay.loginId;
  if (!relay.roles.includes('Supervisor')) {
    for (const id of ['#summary-panel', '#mycalls-panel', '#queues-panel', '#team-panel']) $(id).classList.add('hidden');
    const n = $('#notice'); n.classList.remove('hidden');
    n.replaceChildren(h('h2', {}, 'Not a supervisor'),
      h('p', {}, `You are signed in as ${relay.loginId}, an agent without the Supervisor role in Finesse: there is no team to show. `),
      h('p', {}, h('a', { href: '/' }, 'Open your agent desktop')));
    n.dataset.notice = 'not-supervisor';
    $('#conn').dataset.state = 'none'; $('#conn').textContent = 'Relay: not a supervisor';
    $('#upstream').classList.add('hidden');
    return;
  }
  relay.connect();
  try {
    // The queues this supervisor may watch (UCCE): User/{id}/Queues.
    const { text } = await relay.finesse('GET', `User/${relay.loginId}/Queues`);
    for (const m of text.matchAll(/\/finesse\/api\/Queue\/([^<\s/]+)/g)) relay.subscribe(`/finesse/api/Queue/${m[1]}`);
  } catch (e) { $('#queues').replaceChildren(h('div', { class: 'empty' }, `No queue statistics (${explainError(e).text})`)); }
})();
