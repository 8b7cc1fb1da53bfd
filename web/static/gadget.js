// gadget.js — the Finesse gadget: reads the credentials Finesse gives every
// gadget (finesse.gadget.Config), signs in to the relay with them, follows
// token refreshes, signs in again by itself when its relay session is gone,
// and shows the agent's state (with the pending state), the calls with
// their main variables, and the connection status.
import { RelayClient, RelayError } from './relay-client.js';
import { h, since, clockEl, tickClocks, stateLabel, Upstream } from './ui.js';
import { myParticipant, otherParty, callKind, partLabel, labelVariables } from './finesse-text.js';

const root = document.getElementById('relay-gadget');
const base = root.dataset.relay || new URL(import.meta.url).origin;
const relay = new RelayClient({ baseURL: base });
window.relay = relay;
const upstream = new Upstream();
let me = null;
let dialogs = [];
let layout = [];
let resigns = 0;      // consecutive automatic re-sign-ins
window.relayResigns = 0; // for the tests: how often the gadget signed in again

const conn = h('span', { class: 'conn gadget-conn', 'data-state': 'connecting', role: 'status' }, 'connecting');
const state = h('div', { class: 'state-pill', 'data-agent-state': 'LOGOUT' }, '—');
const clock = h('span', { class: 'clock muted small' });
const pending = h('div', { class: 'pending hidden' });
const calls = h('div', {});
const msg = h('div', { class: 'muted small' });
root.replaceChildren(h('div', { class: 'panel stack gadget-panel' }, h('div', { class: 'row' }, state, clock, h('span', { class: 'push' }, conn)), pending, msg, calls));

function adjust() { try { gadgets.window.adjustHeight(); } catch { /* outside Finesse */ } }

function config() {
  const c = (globalThis.finesse && finesse.gadget && finesse.gadget.Config) || {};
  if (c.authToken) return { loginId: c.id, authToken: c.authToken };
  if (c.authorization) {
    const [id, ...rest] = atob(c.authorization).split(':');
    return { loginId: c.id || id, password: rest.join(':') };
  }
  return null;
}

function showConn() {
  const v = upstream.view();
  let s = relay.link, text;
  if (relay.link !== 'up') text = { connecting: 'connecting…', reconnecting: 'relay reconnecting…', signed_out: 'signing in again…', expired: 'session expired', offline: 'offline' }[relay.link] || relay.link;
  else { s = v.state; text = v.state === 'up' ? `live${upstream.status && upstream.status.side ? ' · side ' + upstream.status.side : ''}` : v.indicator.replace(/^Finesse/, 'Finesse'); }
  conn.dataset.state = s; conn.textContent = text;
  msg.textContent = relay.link === 'up' && v.state !== 'up' ? v.banner : '';
}

function render() {
  if (me) {
    state.dataset.agentState = me.state; state.textContent = stateLabel(me.state);
    clock.textContent = since(me.stateChangeTime);
    pending.classList.toggle('hidden', !me.pendingState);
    pending.textContent = me.pendingState ? `Pending: ${stateLabel(me.pendingState)}` : '';
    if (me.pendingState) pending.dataset.pendingState = me.pendingState; else delete pending.dataset.pendingState;
  }
  const ext = me && me.extension;
  calls.replaceChildren(...dialogs.map(d => {
    const p = myParticipant(d, ext);
    const vars = labelVariables(d, layout).slice(0, 3);
    return h('div', { class: 'dialog' + (p.state === 'ALERTING' ? ' alerting' : ''), 'data-dialog-id': d.id },
      h('div', { class: 'head' }, h('span', { class: 'num' }, otherParty(d, ext)), h('span', { class: 'badge ' + p.state }, partLabel(p.state))),
      h('div', { class: 'muted small' }, callKind(d, ext), ' ', p.startTime && p.state !== 'ALERTING' ? clockEl(p.startTime, '· ') : null),
      vars.length ? h('dl', { class: 'vars' }, ...vars.flatMap(v => [h('dt', {}, v.label), h('dd', {}, v.value)])) : null);
  }));
  showConn();
  adjust();
}

relay.onState((node, data) => {
  if (node === `/finesse/api/User/${relay.loginId}` && data && data.loginId) me = data;
  else if (node === `/finesse/api/User/${relay.loginId}/Dialogs`) dialogs = Array.isArray(data) ? data : [];
  render();
});
relay.onStatus(st => { upstream.update(st); render(); });
relay.onLink(link => {
  if (link === 'up') resigns = 0;
  render();
  // The relay session is gone (a 401 on the ticket, or signed out by the
  // relay): sign in again with the token Finesse holds now.
  if (link === 'signed_out') setTimeout(signIn, Math.min(30000, 1000 * 2 ** resigns++));
  if (link === 'expired') msg.textContent = 'Session expired: reload the desktop.';
});

async function signIn() {
  const creds = config();
  if (!creds) { msg.textContent = 'No Finesse credentials (finesse.gadget.Config) — is this gadget inside the Finesse desktop?'; return false; }
  try {
    await relay.signIn(creds, { bearer: true });
  } catch (e) {
    msg.textContent = e instanceof RelayError && e.status === 401 ? 'Finesse refused the desktop credentials.' : `Relay unreachable (${e.message}); retrying…`;
    setTimeout(signIn, 5000);
    return false;
  }
  if (window.relayStarted) window.relayResigns++;
  window.relayStarted = true;
  relay.connect();
  try { layout = await relay.callVariableLayout(); } catch { layout = []; }
  return true;
}

async function start() {
  try { gadgets.window.setTitle('Finesse Relay'); } catch { /* outside Finesse */ }
  if (!(await signIn())) return;
  let token = (config() || {}).authToken;
  if (token) {
    // Finesse refreshes the SSO token in place; hand the new one over.
    setInterval(async () => {
      const c = config();
      if (c && c.authToken && c.authToken !== token) {
        token = c.authToken;
        try { await relay.refreshToken(token); } catch (e) { msg.textContent = `Token refresh not accepted: ${e.message}`; }
      }
    }, 30000);
  }
  try { gadgets.loadingindicator.dismiss(); } catch { /* outside Finesse */ }
}
setInterval(() => { if (me) clock.textContent = since(me.stateChangeTime); tickClocks(root); }, 1000);

if (globalThis.gadgets && gadgets.HubSettings) gadgets.HubSettings.onConnect = start;
else start();
