// agent.js — the agent desktop tab.
import { RelayClient, RelayError, apiErrors } from '/static/relay-client.js';
import { $, h, since, stateLabel, showConnection, showBanner, describeEvent, logLine } from '/static/ui.js';

const relay = new RelayClient();
window.relay = relay; // for the browser tests and curious integrators
let me = null;        // latest User
let dialogs = [];
let wrapUps = [];

function showSignIn(msg) {
  $('#app').classList.add('hidden');
  $('#signin').classList.remove('hidden');
  const box = $('#signin-error');
  box.classList.toggle('hidden', !msg);
  box.textContent = msg || '';
}

function showApp() {
  $('#signin').classList.add('hidden');
  $('#app').classList.remove('hidden');
  $('#who').textContent = relay.loginId;
  $('#supervisor-link').classList.toggle('hidden', !relay.roles.includes('Supervisor'));
}

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get('error')) { showSignIn(params.get('error')); history.replaceState(null, '', '/'); return; }
  try { await relay.resumeSession(); } catch { showSignIn(); return; }
  run();
}

function run() {
  showApp();
  relay.connect();
  loadReasons();
}

async function loadReasons() {
  try {
    const [nr, lo] = await Promise.all([relay.reasonCodes('NOT_READY'), relay.reasonCodes('LOGOUT')]);
    fill($('#nr-reason'), 'Not ready…', nr); fill($('#logout-reason'), 'Log out…', lo);
  } catch (e) { logLine($('#log'), 'reason codes unavailable: ' + e.message, true); }
  try { wrapUps = await relay.wrapUpReasons(); } catch { wrapUps = []; }
}

function fill(sel, first, items) {
  sel.replaceChildren(h('option', { value: '' }, first), ...items.map(r => h('option', { value: r.id }, r.label)));
}

async function act(label, fn) {
  try {
    const { requestId } = await fn();
    const ev = await relay.awaitEvent(requestId).catch(() => null);
    const errs = ev && apiErrors(ev.data);
    if (errs) logLine($('#log'), `${label} failed: ${errs.map(e => e.errorMessage).join(', ')}`, true);
  } catch (e) {
    logLine($('#log'), `${label} refused: ${e.message}`, true);
  }
}

function renderUser() {
  if (!me) return;
  const st = $('#agent-state');
  st.dataset.agentState = me.state;
  st.textContent = stateLabel(me.state);
  const rc = me.reasonCode || me.ReasonCode;
  $('#reason').textContent = rc && rc.label ? rc.label : '';
  const out = me.state === 'LOGOUT';
  $('#login-row').classList.toggle('hidden', !out);
  $('#state-actions').classList.toggle('hidden', out);
  $('#logout-reason').parentElement.classList.toggle('hidden', out || me.state !== 'NOT_READY');
  $('#btn-ready').disabled = !['NOT_READY', 'WORK', 'WORK_READY'].includes(me.state);
  $('#nr-reason').disabled = !['READY', 'WORK', 'WORK_READY', 'TALKING', 'HOLD', 'RESERVED'].includes(me.state);
  if (!$('#extension').value && me.extension) $('#extension').value = me.extension;
}

function myParticipant(d) {
  const ext = me && me.extension;
  return (d.participants || []).find(p => p.mediaAddress === ext) || (d.participants || [])[0] || { actions: [] };
}

function renderDialogs() {
  const box = $('#dialogs');
  if (!dialogs.length) { box.replaceChildren(h('div', { class: 'empty' }, 'No calls')); return; }
  box.replaceChildren(...dialogs.map(d => {
    const p = myParticipant(d);
    const acts = new Set(p.actions || []);
    const ext = (me && me.extension) || p.mediaAddress;
    const other = d.fromAddress === ext ? d.toAddress : d.fromAddress;
    const mp = d.mediaProperties || {};
    const vars = (mp.callVariables || mp.callvariables || []).filter(v => v.value);
    const btn = (action, label, fn, cls) => acts.has(action) ? h('button', { class: cls, 'data-action': action, onclick: () => act(label, fn) }, label) : null;
    const keypad = acts.has('SEND_DTMF') ? h('div', { class: 'keypad', 'aria-label': 'Keypad' },
      ...'123456789*0#'.split('').map(k => h('button', { onclick: () => act('DTMF', () => relay.sendDtmf(d.id, ext, k)) }, k))) : null;
    const consultTo = h('input', { placeholder: 'Consult to…', size: 10, 'aria-label': 'Consult number' });
    const wrap = (p.state === 'WRAP_UP' || me?.state === 'WORK' || me?.state === 'WORK_READY') && acts.has('UPDATE_CALL_DATA')
      ? h('select', { 'aria-label': 'Wrap-up reason', onchange: e => e.target.value && act('Wrap-up', () => relay.updateCallData(d.id, { wrapUpReason: e.target.value })) },
        h('option', { value: '' }, 'Wrap-up reason…'), ...wrapUps.map(w => h('option', { value: w.label }, w.label))) : null;
    return h('article', { class: 'dialog' + (p.state === 'ALERTING' ? ' alerting' : ''), 'data-dialog-id': d.id },
      h('div', { class: 'head' },
        h('span', { class: 'num' }, other || 'unknown'),
        h('span', { class: 'badge ' + p.state }, p.state === 'HELD' ? 'ON HOLD' : p.state)),
      h('div', { class: 'muted small' }, [mp.callType, mp.queueName && `queue ${mp.queueName}`, mp.dialedNumber && `dialed ${mp.dialedNumber}`].filter(Boolean).join(' · '), ' ', h('span', { class: 'clock', 'data-since': p.stateChangeTime || p.startTime })),
      vars.length ? h('dl', { class: 'vars' }, ...vars.flatMap(v => [h('dt', {}, v.name), h('dd', {}, v.value)])) : null,
      h('div', { class: 'row' },
        btn('ANSWER', 'Answer', () => relay.answer(d.id, ext), 'primary'),
        btn('HOLD', 'Hold', () => relay.hold(d.id, ext)),
        btn('RETRIEVE', 'Retrieve', () => relay.retrieve(d.id, ext), 'primary'),
        btn('TRANSFER', 'Transfer', () => relay.transfer(d.id, ext)),
        btn('CONFERENCE', 'Conference', () => relay.conference(d.id, ext)),
        btn('DROP', 'End call', () => relay.drop(d.id, ext), 'danger'),
        acts.has('CONSULT_CALL') ? h('span', { class: 'row' }, consultTo, h('button', { onclick: () => consultTo.value && act('Consult', () => relay.consult(d.id, ext, consultTo.value)) }, 'Consult')) : null),
      keypad, wrap);
  }));
}

function tick() {
  if (me) $('#state-clock').textContent = since(me.stateChangeTime);
  for (const el of document.querySelectorAll('[data-since]')) el.textContent = since(el.dataset.since);
}

relay.onState((node, data) => {
  if (node === `/finesse/api/User/${relay.loginId}` && data && data.loginId) {
    const was = me && me.state;
    me = data; renderUser(); renderDialogs();
    if (was && was !== 'LOGOUT' && data.state === 'LOGOUT') logLine($('#log'), 'You were signed out of Finesse (phone).', true);
  } else if (node === `/finesse/api/User/${relay.loginId}/Dialogs`) {
    dialogs = Array.isArray(data) ? data : (data && data.dialogs) || [];
    renderDialogs();
  }
});
relay.onEvent(ev => { const { text, err } = describeEvent(ev); logLine($('#log'), text, err); });
relay.onConnection(state => {
  showConnection($('#conn'), state);
  showBanner($('#banner'), state);
  if (state === 'signed_out' || state === 'expired') setTimeout(() => showSignIn(state === 'expired' ? 'Your SSO session expired. Please sign in again.' : 'You were signed out. Please sign in again.'), 1500);
});
relay.onError(e => { if (e instanceof RelayError && e.code) logLine($('#log'), `${e.code}: ${e.message || ''}`, true); });

$('#btn-ready').addEventListener('click', () => act('Ready', () => relay.setState('READY')));
$('#nr-reason').addEventListener('change', e => { const v = e.target.value; e.target.value = ''; act('Not ready', () => relay.setState('NOT_READY', v)); });
$('#logout-reason').addEventListener('change', e => { const v = e.target.value; e.target.value = ''; act('Log out', () => relay.logout(v)); });
$('#btn-login').addEventListener('click', () => act('Sign in to phone', () => relay.login($('#extension').value.trim())));
$('#dial-form').addEventListener('submit', e => { e.preventDefault(); const to = $('#dial-to').value.trim(); if (to) act('Call', () => relay.makeCall(me.extension, to)); });
$('#signout').addEventListener('click', async () => { await relay.signOut().catch(() => {}); location.href = '/'; });
$('#password-form').addEventListener('submit', async e => {
  e.preventDefault();
  try {
    await relay.signIn({ loginId: $('#login-id').value.trim(), password: $('#password').value });
    $('#password').value = '';
    run();
  } catch (err) {
    showSignIn(err instanceof RelayError && err.status === 401 ? 'Finesse did not accept that agent ID and password.' : `Sign-in failed: ${err.message}`);
  }
});
setInterval(tick, 1000);
start();
