// ui.js — small DOM helpers shared by the agent tab, the supervisor view and the gadget.
import { explainError, stateLabel } from './finesse-text.js';

export { stateLabel };
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
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}

/** "3:07" or "1:02:09" since an ISO time. */
export function since(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t)) return '';
  return clock(Math.max(0, Math.floor((now - t) / 1000)));
}

/** "3:07" or "1:02:09" for a number of seconds. */
export function clock(s) {
  s = Math.max(0, Math.floor(s));
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const p = n => String(n).padStart(2, '0');
  return hh ? `${hh}:${p(mm)}:${p(s)}` : `${mm}:${p(s)}`;
}

/** Updates every [data-since] clock below root. */
export function tickClocks(root = document) {
  for (const el of root.querySelectorAll('[data-since]')) el.textContent = (el.dataset.prefix || '') + since(el.dataset.since);
}

/** A clock element showing the time since iso, filled in at once (not blank until the next tick). */
export function clockEl(iso, prefix = '', attrs = {}) {
  return h('span', { class: 'clock', 'data-since': iso || '', 'data-prefix': prefix, ...attrs }, iso ? prefix + since(iso) : '');
}

/**
 * Shows a refused action in box (near the control that was used): a
 * sentence, and the raw Finesse code for support. null/undefined clears it.
 */
export function showError(box, err) {
  if (!box) return;
  if (err === null || err === undefined) { box.replaceChildren(); box.classList.add('hidden'); return; }
  const { text, code } = explainError(err);
  box.replaceChildren(h('span', { class: 'why' }, text), ' ', h('code', { class: 'raw', title: 'for support' }, code));
  box.classList.remove('hidden');
}

/** The relay link (browser↔relay WebSocket) as an indicator. */
const LINK_TEXT = { connecting: 'Relay: connecting…', up: 'Relay: live', reconnecting: 'Relay: reconnecting…', signed_out: 'Relay: signed out', expired: 'Relay: session expired', offline: 'Relay: offline' };
export function showLink(el, link) { el.dataset.state = link; el.textContent = LINK_TEXT[link] || `Relay: ${link}`; }

/** The relay-link banner: only while this page cannot reach the relay. */
export function showLinkBanner(el, link) {
  const text = link === 'reconnecting'
    ? 'This page lost its connection to the relay and is reconnecting. Nothing is lost: the relay keeps your Finesse session and replays what happened meanwhile. Buttons are paused until it is back.'
    : '';
  el.classList.toggle('hidden', !text);
  el.textContent = text;
}

/**
 * Tracks the upstream Finesse status messages and says what they mean:
 * {indicator, banner, tone, actionsOK}. Both sides reported out of service
 * since the last "up" means both are down (the relay alternates between
 * them while it waits).
 */
export class Upstream {
  constructor() { this.down = new Set(); this.status = null; this.lastUpSide = ''; this.failedOver = false; }
  update(st) {
    this.status = st;
    const side = st.side || '';
    if (st.upstream === 'out_of_service' && side) this.down.add(side);
    if (st.upstream === 'up') {
      if (this.lastUpSide && side && side !== this.lastUpSide) this.failedOver = true;
      this.lastUpSide = side; this.down.clear();
    }
    return this.view();
  }
  view() {
    const st = this.status;
    if (!st) return { state: 'connecting', indicator: 'Finesse: connecting…', banner: '', tone: '', actionsOK: false };
    const side = st.side ? ` side ${st.side}` : '';
    const other = st.side === 'A' ? 'B' : st.side === 'B' ? 'A' : 'the other side';
    const phone = 'Calls already on your phone continue: answer, hold and hang up on the phone itself.';
    switch (st.upstream) {
      case 'up':
        return { state: 'up', indicator: `Finesse${side}: live${this.failedOver ? ' (after failover)' : ''}`, banner: '', tone: '', actionsOK: true };
      case 'connecting':
        return { state: 'connecting', indicator: `Finesse${side}: connecting…`, banner: '', tone: '', actionsOK: false };
      case 'reconnecting':
        return { state: 'reconnecting', indicator: `Finesse${side}: reconnecting…`, tone: '', actionsOK: false,
          banner: `The relay lost its connection to Finesse${side} and is reconnecting. ${phone} State and call buttons here are paused until Finesse is back.` };
      case 'failover':
      case 'out_of_service':
        if (this.down.size >= 2) {
          return { state: 'out_of_service', indicator: 'Finesse: both sides out of service', tone: 'bad', actionsOK: false,
            banner: `Finesse is out of service on both sides (A and B). ${phone} State changes, dialling and call buttons here are disabled until Finesse is back; this page shows "live" as soon as a side returns.` };
        }
        if (st.upstream === 'failover') {
          return { state: 'failover', indicator: `Finesse: moving to${side}…`, tone: '', actionsOK: false,
            banner: `Finesse is failing over to${side}. ${phone} State and call buttons return in a moment.` };
        }
        return { state: 'out_of_service', indicator: `Finesse${side}: out of service`, tone: 'bad', actionsOK: false,
          banner: `Finesse${side} is out of service; the relay is trying side ${other}. ${phone} State and call buttons are paused.` };
      case 'signed_out':
        return { state: 'signed_out', indicator: 'Finesse: signed out', banner: '', tone: '', actionsOK: false };
    }
    return { state: st.upstream, indicator: `Finesse: ${st.upstream}`, banner: '', tone: '', actionsOK: false };
  }
}

/** Renders an Upstream view into an indicator and a banner. */
export function showUpstream(indicator, banner, v) {
  indicator.dataset.state = v.state;
  indicator.textContent = v.indicator;
  banner.classList.toggle('hidden', !v.banner);
  banner.textContent = v.banner;
  banner.className = 'banner' + (v.tone ? ' ' + v.tone : '') + (v.banner ? '' : ' hidden');
}

export function logLine(list, text, err = false) {
  const t = new Date().toLocaleTimeString([], { hour12: false });
  list.prepend(h('li', {}, h('span', { class: 't' }, t), h('span', { class: err ? 'err' : '' }, text)));
  while (list.children.length > 200) list.lastChild.remove();
}
