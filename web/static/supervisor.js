// supervisor.js — live team grid and queue tiles for supervisors.
import { RelayClient, apiErrors } from '/static/relay-client.js';
import { $, h, since, stateLabel, showConnection, showBanner } from '/static/ui.js';

const relay = new RelayClient();
window.relay = relay;
const teams = new Map();  // node -> team
const queues = new Map(); // node -> queue

async function act(fn) {
  try {
    const { requestId } = await fn();
    const ev = await relay.awaitEvent(requestId).catch(() => null);
    const errs = ev && apiErrors(ev.data);
    if (errs) alertBox(errs.map(e => e.errorMessage).join(', '));
  } catch (e) { alertBox(e.message); }
}

function alertBox(msg) {
  const n = $('#notice');
  n.className = 'panel error-box'; n.textContent = msg;
  setTimeout(() => n.classList.add('hidden'), 6000);
}

function renderTeam() {
  const rows = [];
  for (const team of teams.values()) {
    for (const u of team.users || []) {
      const rc = u.reasonCode || u.ReasonCode;
      const s = u.state;
      rows.push(h('tr', { 'data-agent': u.loginId },
        h('td', {}, u.loginId),
        h('td', {}, [u.firstName, u.lastName].filter(Boolean).join(' ')),
        h('td', {}, u.extension || ''),
        h('td', {}, h('span', { class: 'dot', 'data-agent-state': s }, stateLabel(s))),
        h('td', { class: 'muted' }, rc && rc.label || ''),
        h('td', { class: 'clock', 'data-since': u.stateChangeTime }, since(u.stateChangeTime)),
        h('td', { class: 'row' },
          h('button', { disabled: s !== 'NOT_READY' && s !== 'WORK' && s !== 'WORK_READY', onclick: () => act(() => relay.setAgentState(u.loginId, 'READY')) }, 'Ready'),
          h('button', { disabled: !['READY', 'WORK', 'WORK_READY'].includes(s), onclick: () => act(() => relay.setAgentState(u.loginId, 'NOT_READY')) }, 'Not ready'),
          h('button', { class: 'danger', disabled: s === 'LOGOUT', onclick: () => act(() => relay.setAgentState(u.loginId, 'LOGOUT')) }, 'Sign out'))));
    }
  }
  $('#team tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No team members'))]));
}

function renderQueues() {
  if (!queues.size) return;
  $('#queues').replaceChildren(...[...queues.values()].map(q => {
    const st = q.statistics || {};
    const talking = (st.agentsTalkingInbound || 0) + (st.agentsTalkingOutbound || 0) + (st.agentsTalkingInternal || 0);
    return h('div', { class: 'panel tile', 'data-queue': q.name },
      h('div', { class: 'muted small' }, q.name),
      h('div', { class: 'big' }, st.callsInQueue ?? 0), h('div', { class: 'muted small' }, 'calls waiting'),
      h('div', { class: 'kv' }, h('span', {}, 'Longest wait'), h('span', { class: 'clock', 'data-since': st.startTimeOfLongestCallInQueue || '' }, since(st.startTimeOfLongestCallInQueue))),
      h('div', { class: 'kv' }, h('span', {}, 'Ready'), h('span', {}, st.agentsReady ?? 0)),
      h('div', { class: 'kv' }, h('span', {}, 'Talking'), h('span', {}, talking)),
      h('div', { class: 'kv' }, h('span', {}, 'Not ready'), h('span', {}, st.agentsNotReady ?? 0)));
  }));
}

relay.onState((node, data) => {
  if (/\/Team\/[^/]+\/Users$/.test(node)) { teams.set(node, data); renderTeam(); }
  else if (/\/Queue\/[^/]+$/.test(node)) { queues.set(node, data); renderQueues(); }
  else if (node === `/finesse/api/User/${relay.loginId}` && data) {
    for (const t of data.teams || []) relay.subscribe(`/finesse/api/Team/${t.id}/Users`);
  }
});
relay.onConnection(state => { showConnection($('#conn'), state); showBanner($('#banner'), state); });
setInterval(() => { for (const el of document.querySelectorAll('[data-since]')) el.textContent = since(el.dataset.since); }, 1000);

(async () => {
  try { await relay.resumeSession(); } catch { location.href = '/login?return=/supervisor'; return; }
  $('#who').textContent = relay.loginId;
  if (!relay.roles.includes('Supervisor')) {
    const n = $('#notice'); n.classList.remove('hidden');
    n.textContent = 'You are signed in as an agent without the Supervisor role: there is no team to show.';
    return;
  }
  relay.connect();
  try {
    // The queues this supervisor may watch (UCCE): User/{id}/Queues.
    const { text } = await relay.finesse('GET', `User/${relay.loginId}/Queues`);
    for (const m of text.matchAll(/\/finesse\/api\/Queue\/([^<\s/]+)/g)) relay.subscribe(`/finesse/api/Queue/${m[1]}`);
  } catch { /* UCCX has no queue statistics */ }
})();
