// gadget.js — the Finesse gadget: reads the credentials Finesse gives every
// gadget (finesse.gadget.Config), signs in to the relay with them, follows
// token refreshes, and shows the agent's state and calls compactly.
import { RelayClient, RelayError } from './relay-client.js';
import { h, since, stateLabel, showConnection } from './ui.js';

const root = document.getElementById('relay-gadget');
const base = root.dataset.relay || new URL(import.meta.url).origin;
const relay = new RelayClient({ baseURL: base });
window.relay = relay;
let me = null;
let dialogs = [];

const conn = h('span', { class: 'conn', 'data-state': 'connecting' }, 'connecting');
const state = h('div', { class: 'state-pill', 'data-agent-state': 'LOGOUT' }, '—');
const clock = h('span', { class: 'clock muted small' });
const calls = h('div', {});
const msg = h('div', { class: 'muted small' });
root.replaceChildren(h('div', { class: 'panel stack' }, h('div', { class: 'row' }, state, clock, h('span', { class: 'push' }, conn)), msg, calls));

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

function render() {
  if (me) {
    state.dataset.agentState = me.state; state.textContent = stateLabel(me.state);
    clock.textContent = since(me.stateChangeTime);
  }
  calls.replaceChildren(...dialogs.map(d => {
    const p = (d.participants || []).find(x => me && x.mediaAddress === me.extension) || {};
    const other = me && d.fromAddress === me.extension ? d.toAddress : d.fromAddress;
    return h('div', { class: 'dialog' + (p.state === 'ALERTING' ? ' alerting' : '') }, h('div', { class: 'head' }, h('span', { class: 'num' }, other), h('span', { class: 'badge ' + p.state }, p.state)));
  }));
  adjust();
}

relay.onState((node, data) => {
  if (node === `/finesse/api/User/${relay.loginId}` && data && data.loginId) me = data;
  else if (node === `/finesse/api/User/${relay.loginId}/Dialogs`) dialogs = Array.isArray(data) ? data : [];
  render();
});
relay.onConnection(s => { showConnection(conn, s); msg.textContent = s === 'expired' ? 'Session expired: reload the desktop.' : ''; adjust(); });

async function start() {
  try { gadgets.window.setTitle('Finesse Relay'); } catch { /* outside Finesse */ }
  const creds = config();
  if (!creds) { msg.textContent = 'No Finesse credentials (finesse.gadget.Config) — is this gadget inside the Finesse desktop?'; return; }
  try {
    await relay.signIn(creds, { bearer: true });
  } catch (e) {
    msg.textContent = e instanceof RelayError && e.status === 401 ? 'Finesse refused the desktop credentials.' : `Relay unreachable (${e.message}); retrying…`;
    setTimeout(start, 5000);
    return;
  }
  relay.connect();
  let token = creds.authToken;
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
setInterval(() => { if (me) clock.textContent = since(me.stateChangeTime); }, 1000);

if (globalThis.gadgets && gadgets.HubSettings) gadgets.HubSettings.onConnect = start;
else start();
