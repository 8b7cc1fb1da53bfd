// ui.js — small helpers shared by the agent tab, the supervisor view and the gadget.
import { apiErrors } from '/static/relay-client.js';

export const $ = (sel, root = document) => root.querySelector(sel);

/** Creates an element: h('button', {class: 'x', onclick}, 'text', child...). */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) el.append(k instanceof Node ? k : String(k));
  return el;
}

/** "3:07" or "1:02:09" since an ISO time. */
export function since(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t)) return '';
  let s = Math.max(0, Math.floor((now - t) / 1000));
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const p = n => String(n).padStart(2, '0');
  return hh ? `${hh}:${p(mm)}:${p(s)}` : `${mm}:${p(s)}`;
}

export const stateLabel = s => ({ NOT_READY: 'Not ready', READY: 'Ready', TALKING: 'Talking', HOLD: 'On hold', RESERVED: 'Reserved', WORK: 'Wrap-up', WORK_READY: 'Wrap-up (ready)', LOGOUT: 'Logged out', UNKNOWN: 'Unknown' }[s] || s || '—');

const CONN_TEXT = {
  connecting: 'connecting…', up: 'live', reconnecting: 'reconnecting…', failover: 'switching Finesse side…',
  out_of_service: 'Finesse out of service', signed_out: 'signed out', expired: 'session expired', offline: 'offline',
};
export function showConnection(el, state) { el.dataset.state = state; el.textContent = CONN_TEXT[state] || state; }

const BANNERS = {
  reconnecting: ['The relay is unreachable — reconnecting; no event will be lost.', ''],
  failover: ['Finesse is failing over to the other side. Calls continue; controls return in a moment.', ''],
  out_of_service: ['Finesse is out of service. Waiting for it (or the other side) to come back.', 'bad'],
  signed_out: ['You were signed out. Sign in again to continue.', 'bad'],
  expired: ['Your SSO session expired. Sign in again to continue.', 'bad'],
};
export function showBanner(el, state) {
  const b = BANNERS[state];
  el.classList.toggle('hidden', !b);
  if (b) { el.textContent = b[0]; el.className = 'banner ' + b[1]; }
}

/** A human line for a WebSocket event. */
export function describeEvent(ev) {
  const errs = apiErrors(ev.data);
  const what = ev.node.replace('/finesse/api/', '');
  if (errs) return { text: `${what}: ${errs.map(e => e.errorMessage || e.errorType).join(', ')}`, err: true };
  const d = ev.data || {};
  if (d.state && d.loginId) return { text: `${what}: ${d.loginId} → ${stateLabel(d.state)}` };
  if (Array.isArray(d.dialogs)) return { text: `${what}: ${ev.event === 'POST' ? 'new call' : ev.event === 'DELETE' ? 'call removed' : 'calls changed'} (${d.dialogs.map(x => x.fromAddress).join(', ')})` };
  if (d.participants) return { text: `${what}: call ${d.fromAddress || ''} ${d.state}` };
  return { text: `${what}: ${ev.event}` };
}

export function logLine(list, text, err = false) {
  const t = new Date().toLocaleTimeString([], { hour12: false });
  list.prepend(h('li', {}, h('span', { class: 't' }, t), h('span', { class: err ? 'err' : '' }, text)));
  while (list.children.length > 200) list.lastChild.remove();
}
