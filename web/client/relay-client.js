// relay-client.js — the Finesse Relay browser client (ES module, no dependencies).
//
//   import { RelayClient } from '/static/relay-client.js';
//   const relay = new RelayClient();                 // same-origin pages
//   await relay.signIn({ loginId: '1001', password: 'demo' });   // or { loginId, authToken } or nothing (cookie)
//   relay.onState((node, data) => ...);              // snapshot and fresh state per node
//   relay.onEvent(ev => ...);                        // {seq, node, event, source, requestId, data}
//   relay.onConnection(state => ...);                // connecting | up | reconnecting | failover | out_of_service | signed_out | expired | offline
//   relay.onLink(state => ...);                      // the browser↔relay WebSocket alone: connecting | up | reconnecting | signed_out | expired | offline
//   relay.onStatus(st => ...);                       // upstream Finesse: {upstream, side, host}
//   relay.connect();
//   const { requestId } = await relay.setState('READY');
//   const ev = await relay.awaitEvent(requestId);    // the Finesse notification that carries the outcome
//
// Reconnects with exponential backoff and jitter, resumes from the last seq it
// saw (no event lost), answers heartbeats, and stops for good on close codes
// that mean "sign in again" (4100, 4101, 4103).

/** How many events with a requestId nobody waited for yet are kept for awaitEvent. */
const SEEN_MAX = 256;

/** Close codes of the relay's WebSocket (see README, "Browser protocol"). */
export const CloseCodes = Object.freeze({
  NORMAL: 1000, GOING_AWAY: 1001, TOO_BIG: 1009, INTERNAL: 1011,
  QUEUE_OVERFLOW: 4000, HEARTBEAT_TIMEOUT: 4001,
  SIGNED_OUT: 4100, SESSION_EXPIRED: 4101, SHUTDOWN: 4102, POLICY_VIOLATION: 4103,
});

const TERMINAL = new Map([
  [CloseCodes.SIGNED_OUT, 'signed_out'],
  [CloseCodes.SESSION_EXPIRED, 'expired'],
  [CloseCodes.POLICY_VIOLATION, 'signed_out'],
]);

/** Error from a relay or Finesse call, with the HTTP status and the body. */
export class RelayError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status; this.code = code; this.body = body;
  }
}

/** Escapes text for an XML body. */
export function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
}

/** Backoff delay for the n-th consecutive failed attempt (ms), with ±25 % jitter. */
export function backoff(n, { base = 500, max = 15000, random = Math.random } = {}) {
  const d = Math.min(max, base * 2 ** Math.max(0, n));
  return Math.round(d * (0.75 + random() * 0.5));
}

export class RelayClient {
  /**
   * @param {object} [opts]
   * @param {string} [opts.baseURL]  relay origin ('' = same origin)
   * @param {Function} [opts.fetch]  fetch implementation (tests)
   * @param {Function} [opts.WebSocket] WebSocket implementation (tests)
   * @param {object} [opts.timers]  {setTimeout, clearTimeout} (tests)
   * @param {Function} [opts.random] Math.random replacement (tests)
   */
  constructor(opts = {}) {
    this.baseURL = (opts.baseURL || '').replace(/\/$/, '');
    this._fetch = opts.fetch || globalThis.fetch.bind(globalThis);
    this._WS = opts.WebSocket || globalThis.WebSocket;
    this._timers = opts.timers || { setTimeout: globalThis.setTimeout.bind(globalThis), clearTimeout: globalThis.clearTimeout.bind(globalThis) };
    this._random = opts.random || Math.random;
    this.session = null;      // bearer token (gadgets); null = cookie
    this.loginId = null;
    this.roles = [];
    this.ticket = null;
    this.lastSeq = null;      // last seq seen; resume point
    this.stream = null;       // welcome.stream: resume only within the same agent session
    this.states = new Map();  // node -> latest data
    this.status = null;       // last status message
    this.connection = 'offline';
    this.link = 'offline';     // the WebSocket to the relay alone (not Finesse)
    this.heartbeat = 25;
    this._ws = null;
    this._attempt = 0;
    this._stopped = true;
    this._timer = null;
    this._hb = null;
    this._subs = new Set();
    this._handlers = { state: [], event: [], status: [], connection: [], error: [], welcome: [], link: [] };
    this._waiters = new Map(); // requestId -> {resolve, reject, timer}
    // The notification of a request can arrive on the WebSocket before the
    // HTTP answer that names its requestId: the last events with a
    // requestId are kept, so awaitEvent finds one that came first.
    this._seen = new Map(); // requestId -> event, oldest first, at most SEEN_MAX
    this._nextId = 1;
  }

  // ---- callbacks ----
  onState(fn) { this._handlers.state.push(fn); return this; }
  onEvent(fn) { this._handlers.event.push(fn); return this; }
  onStatus(fn) { this._handlers.status.push(fn); return this; }
  onConnection(fn) { this._handlers.connection.push(fn); return this; }
  onError(fn) { this._handlers.error.push(fn); return this; }
  onWelcome(fn) { this._handlers.welcome.push(fn); return this; }
  /** The browser↔relay WebSocket alone: connecting | up | reconnecting | signed_out | expired | offline. */
  onLink(fn) { this._handlers.link.push(fn); return this; }
  _setLink(s) { if (this.link !== s) { this.link = s; this._emit('link', s); } }
  _emit(kind, ...args) { for (const fn of this._handlers[kind]) { try { fn(...args); } catch (e) { console.error(e); } } }
  _setConnection(s, upstream = false) {
    if (!upstream) this._setLink(s);
    if (this.connection !== s) { this.connection = s; this._emit('connection', s); }
  }

  // ---- relay API ----
  async _api(method, path, body) {
    const headers = { 'X-Relay-Request': '1' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.session) headers.Authorization = 'Bearer ' + this.session;
    const rsp = await this._fetch(this.baseURL + path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await rsp.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!rsp.ok) {
      const e = json && json.error || {};
      throw new RelayError(rsp.status, e.code, e.message, text);
    }
    return json;
  }

  _adopt(r) {
    if (r.session && this.session !== null) this.session = r.session;
    this.loginId = r.loginId; this.roles = r.roles || []; this.ticket = r.ticket;
    return r;
  }

  /**
   * Signs in. {loginId, password} (non-SSO), {loginId, authToken} (SSO token
   * from a gadget), or no argument: the existing relay cookie (after /login).
   * With bearer: true the session token is kept and sent as a bearer (gadgets,
   * which run cross-origin and cannot use the cookie).
   */
  async signIn(creds, { bearer = false } = {}) {
    const r = await this._api('POST', '/api/v1/sessions', creds || undefined);
    if (bearer) this.session = r.session;
    return this._adopt(r);
  }

  /** Resumes an existing sign-in (cookie or bearer) with a fresh ticket. */
  async resumeSession() { return this._adopt(await this._api('POST', '/api/v1/tickets')); }

  /** Hands a refreshed Finesse SSO token to the relay (gadgets). */
  async refreshToken(authToken) { await this._api('PUT', '/api/v1/sessions/token', { authToken }); }

  /** Signs this browser out of the relay. */
  async signOut() {
    this.disconnect();
    try { await this._api('DELETE', '/api/v1/sessions'); } finally { this.session = null; this._setConnection('signed_out'); }
  }

  // ---- WebSocket ----
  /** Opens the WebSocket (with the ticket from signIn) and keeps it open. */
  connect() { this._stopped = false; this._open(); }

  /** Closes the WebSocket and stops reconnecting. */
  disconnect() {
    this._stopped = true;
    this._timers.clearTimeout(this._timer); this._timers.clearTimeout(this._hb);
    if (this._ws) { try { this._ws.close(1000, 'client closed'); } catch { /* ignore */ } this._ws = null; }
    this._setConnection('offline');
  }

  _wsURL(ticket) {
    let base = this.baseURL || (globalThis.location ? globalThis.location.origin : '');
    base = base.replace(/^http/, 'ws');
    let u = `${base}/ws?ticket=${encodeURIComponent(ticket)}`;
    if (this.lastSeq !== null) u += `&since=${this.lastSeq}`;
    if (this.lastSeq !== null && this.stream) u += `&stream=${encodeURIComponent(this.stream)}`;
    return u;
  }

  async _open() {
    if (this._stopped) return;
    this._setConnection(this._attempt === 0 && this.lastSeq === null ? 'connecting' : 'reconnecting');
    if (!this.ticket) {
      try { await this.resumeSession(); } catch (e) {
        if (e instanceof RelayError && e.status === 401) { this._stopped = true; this._setConnection('signed_out'); this._emit('error', e); return; }
        return this._retry();
      }
    }
    const ticket = this.ticket; this.ticket = null; // single use
    let ws;
    try { ws = new this._WS(this._wsURL(ticket)); } catch { return this._retry(); }
    this._ws = ws;
    ws.onmessage = (m) => this._onMessage(m.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
    ws.onerror = () => { /* onclose follows */ };
  }

  _retry() {
    if (this._stopped) return;
    const d = backoff(this._attempt++, { random: this._random });
    this._setConnection('reconnecting');
    this._timer = this._timers.setTimeout(() => this._open(), d);
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._timers.clearTimeout(this._hb);
    if (this._stopped) return;
    const terminal = TERMINAL.get(code);
    if (terminal) { this._stopped = true; this._setConnection(terminal); this._emit('error', new RelayError(0, terminal, reason)); return; }
    if (code === CloseCodes.SHUTDOWN) { this.lastSeq = null; this.stream = null; } // a new session: fresh snapshot
    this._retry();
  }

  _send(msg) { if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(msg)); }

  _beat() {
    this._timers.clearTimeout(this._hb);
    this._hb = this._timers.setTimeout(() => { this._send({ type: 'ping', id: 'hb' + this._nextId++ }); this._beat(); }, this.heartbeat * 1000);
  }

  _onMessage(raw) {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    if (typeof m.seq === 'number' && (this.lastSeq === null || m.seq > this.lastSeq)) this.lastSeq = m.seq;
    switch (m.type) {
      case 'welcome':
        this._attempt = 0;
        this.loginId = m.agent; this.roles = m.roles || this.roles;
        if (m.stream) this.stream = m.stream;
        if (m.heartbeat) this.heartbeat = m.heartbeat;
        this._beat();
        if (!m.resumed) this.states.clear();
        this._setLink('up');
        this._setConnection(this.status && this.status.upstream !== 'up' ? this.status.upstream : 'up', true);
        for (const node of this._subs) this._send({ type: 'subscribe', id: 's' + this._nextId++, node });
        this._emit('welcome', m);
        break;
      case 'state':
        this.states.set(m.node, m.data);
        this._emit('state', m.node, m.data, m);
        break;
      case 'event': {
        const next = reduceState(m.node, this.states.get(m.node), m);
        if (next !== undefined) { this.states.set(m.node, next); this._emit('state', m.node, next, m); }
        this._emit('event', m);
        if (m.requestId && this._waiters.has(m.requestId)) {
          const w = this._waiters.get(m.requestId); this._waiters.delete(m.requestId);
          this._timers.clearTimeout(w.timer); w.resolve(m);
        } else if (m.requestId) {
          this._seen.delete(m.requestId);
          this._seen.set(m.requestId, m);
          if (this._seen.size > SEEN_MAX) this._seen.delete(this._seen.keys().next().value);
        }
        break;
      }
      case 'status':
        this.status = m;
        this._setConnection(m.upstream, true);
        this._emit('status', m);
        break;
      case 'error':
        this._emit('error', new RelayError(0, m.code, m.message));
        break;
    }
  }

  /** Asks for a Team or Queue node's events (supervisors); kept across reconnects. */
  subscribe(node) { this._subs.add(node); this._send({ type: 'subscribe', id: 's' + this._nextId++, node }); }
  unsubscribe(node) { this._subs.delete(node); this._send({ type: 'unsubscribe', id: 'u' + this._nextId++, node }); }

  /** Resolves with the event carrying requestId (the 202-then-event pattern). */
  awaitEvent(requestId, timeoutMs = 10000) {
    const early = this._seen.get(requestId);
    if (early) { this._seen.delete(requestId); return Promise.resolve(early); }
    return new Promise((resolve, reject) => {
      const timer = this._timers.setTimeout(() => { this._waiters.delete(requestId); reject(new RelayError(0, 'timeout', `no event for request ${requestId} within ${timeoutMs} ms`)); }, timeoutMs);
      this._waiters.set(requestId, { resolve, reject, timer });
    });
  }

  // ---- Finesse REST through the relay ----
  /** Any allow-listed Finesse call: returns {status, requestId, text}. */
  async finesse(method, path, xml) {
    const headers = { 'X-Relay-Request': '1', requestId: 'web-' + Date.now().toString(36) + '-' + (this._nextId++) };
    if (xml !== undefined) headers['Content-Type'] = 'application/xml';
    if (this.session) headers.Authorization = 'Bearer ' + this.session;
    const rsp = await this._fetch(`${this.baseURL}/api/finesse/${path.replace(/^\//, '')}`, { method, headers, body: xml, credentials: 'same-origin' });
    const text = await rsp.text();
    const requestId = rsp.headers.get('requestId') || headers.requestId;
    if (!rsp.ok) {
      const msg = (text.match(/<(?:ErrorMessage|errorMessage)>([^<]*)</) || [])[1] || (text.match(/"message":"([^"]*)"/) || [])[1] || `HTTP ${rsp.status}`;
      const type = (text.match(/<(?:ErrorType|errorType)>([^<]*)</) || [])[1] || '';
      throw new RelayError(rsp.status, type, type ? `${type}: ${msg}` : msg, text);
    }
    return { status: rsp.status, requestId, text };
  }

  _me() { return this.loginId; }
  setState(state, reasonCodeId) {
    const rc = reasonCodeId ? `<reasonCodeId>${xmlEscape(reasonCodeId)}</reasonCodeId>` : '';
    return this.finesse('PUT', `User/${this._me()}`, `<User><state>${xmlEscape(state)}</state>${rc}</User>`);
  }
  setAgentState(loginId, state) { return this.finesse('PUT', `User/${loginId}`, `<User><state>${xmlEscape(state)}</state></User>`); }
  login(extension) { return this.finesse('PUT', `User/${this._me()}`, `<User><state>LOGIN</state><extension>${xmlEscape(extension)}</extension></User>`); }
  logout(reasonCodeId) { return this.setState('LOGOUT', reasonCodeId); }
  makeCall(fromExtension, to) {
    return this.finesse('POST', `User/${this._me()}/Dialogs`, `<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>${xmlEscape(fromExtension)}</fromAddress><toAddress>${xmlEscape(to)}</toAddress></Dialog>`);
  }
  _action(dialogId, action, ext, extra = '') {
    return this.finesse('PUT', `Dialog/${dialogId}`, `<Dialog><requestedAction>${action}</requestedAction><targetMediaAddress>${xmlEscape(ext)}</targetMediaAddress>${extra}</Dialog>`);
  }
  answer(dialogId, ext) { return this._action(dialogId, 'ANSWER', ext); }
  hold(dialogId, ext) { return this._action(dialogId, 'HOLD', ext); }
  retrieve(dialogId, ext) { return this._action(dialogId, 'RETRIEVE', ext); }
  drop(dialogId, ext) { return this._action(dialogId, 'DROP', ext); }
  consult(dialogId, ext, to) { return this._action(dialogId, 'CONSULT_CALL', ext, `<toAddress>${xmlEscape(to)}</toAddress>`); }
  transfer(dialogId, ext) { return this._action(dialogId, 'TRANSFER', ext); }
  /** Single-step (blind) transfer of an active call to a number. */
  singleStepTransfer(dialogId, ext, to) { return this._action(dialogId, 'TRANSFER_SST', ext, `<toAddress>${xmlEscape(to)}</toAddress>`); }
  /** Supervisors: drop another party (e.g. the agent) from a call they barged into. */
  participantDrop(dialogId, targetAddress) { return this._action(dialogId, 'PARTICIPANT_DROP', targetAddress); }
  /** Supervisors: silently monitor the agent on extension agentExt from supervisorExt. */
  silentMonitor(supervisorExt, agentExt) {
    return this.finesse('POST', `User/${this._me()}/Dialogs`, `<Dialog><requestedAction>SILENT_MONITOR</requestedAction><fromAddress>${xmlEscape(supervisorExt)}</fromAddress><toAddress>${xmlEscape(agentExt)}</toAddress></Dialog>`);
  }
  /** Supervisors: barge into the call monitored by monitorDialogId. */
  barge(supervisorExt, agentExt, monitorDialogId) {
    return this.finesse('POST', `User/${this._me()}/Dialogs`, `<Dialog><requestedAction>BARGE_CALL</requestedAction><fromAddress>${xmlEscape(supervisorExt)}</fromAddress><toAddress>${xmlEscape(agentExt)}</toAddress><associatedDialogUri>/finesse/api/Dialog/${xmlEscape(monitorDialogId)}</associatedDialogUri></Dialog>`);
  }
  conference(dialogId, ext) { return this._action(dialogId, 'CONFERENCE', ext); }
  sendDtmf(dialogId, ext, digits) {
    return this._action(dialogId, 'SEND_DTMF', ext, `<actionParams><ActionParam><name>dtmfString</name><value>${xmlEscape(digits)}</value></ActionParam></actionParams>`);
  }
  updateCallData(dialogId, { wrapUpReason, callVariables } = {}) {
    let mp = '';
    if (wrapUpReason) mp += `<wrapUpReason>${xmlEscape(wrapUpReason)}</wrapUpReason>`;
    if (callVariables) {
      mp += '<callvariables>' + Object.entries(callVariables).map(([n, v]) => `<CallVariable><name>${xmlEscape(n)}</name><value>${xmlEscape(v)}</value></CallVariable>`).join('') + '</callvariables>';
    }
    return this.finesse('PUT', `Dialog/${dialogId}`, `<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction><mediaProperties>${mp}</mediaProperties></Dialog>`);
  }
  /** Reason codes of a category (NOT_READY, LOGOUT): [{id, label, code}]. */
  async reasonCodes(category) {
    const { text } = await this.finesse('GET', `User/${this._me()}/ReasonCodes?category=${encodeURIComponent(category)}`);
    return parseList(text, 'ReasonCode', ['id', 'label', 'code', 'category']);
  }
  /**
   * The call variable layout (Finesse MediaPropertiesLayouts): [{label, name, header}]
   * in display order; [] when the system has none.
   */
  async callVariableLayout() {
    const { text } = await this.finesse('GET', `User/${this._me()}/MediaPropertiesLayouts`);
    return parseLayout(text);
  }
  /** Wrap-up reasons: [{label}]. */
  async wrapUpReasons() {
    const { text } = await this.finesse('GET', `User/${this._me()}/WrapUpReasons`);
    return parseList(text, 'WrapUpReason', ['label', 'id']);
  }
}

/** Extracts simple child fields of repeated elements from Finesse XML. */
export function parseList(xml, element, fields) {
  const out = [];
  const re = new RegExp(`<${element}>([\\s\\S]*?)</${element}>`, 'gi');
  for (const m of xml.matchAll(re)) {
    const item = {};
    for (const f of fields) {
      const v = m[1].match(new RegExp(`<${f}>([^<]*)</${f}>`, 'i'));
      if (v) item[f] = v[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
    }
    out.push(item);
  }
  return out;
}

/** The entries of the first MediaPropertiesLayout: [{label, name, header}]. */
export function parseLayout(xml) {
  const layout = (xml.match(/<MediaPropertiesLayout>([\s\S]*?)<\/MediaPropertiesLayout>/) || [])[1] || '';
  const out = [];
  const header = (layout.match(/<header>([\s\S]*?)<\/header>/) || [])[1] || '';
  const entries = (part, isHeader) => {
    for (const e of parseList(part, 'entry', ['displayName', 'mediaProperty'])) {
      if (e.mediaProperty) out.push({ label: e.displayName || e.mediaProperty, name: e.mediaProperty, header: isHeader });
    }
  };
  entries(header, true);
  for (const m of layout.matchAll(/<column>([\s\S]*?)<\/column>/g)) entries(m[1], false);
  return out;
}

/** Finesse apiErrors carried by an event's data, or null. */
export function apiErrors(data) {
  if (!data || typeof data !== 'object') return null;
  const e = data.apiErrors || data.errors || (Array.isArray(data) ? null : null);
  return Array.isArray(e) && e.length ? e : null;
}

function dialogList(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.dialogs)) return data.dialogs;
  return null;
}

/**
 * The node's state after an event (undefined: unchanged), by Finesse's
 * rules: a Dialogs collection (voice, or Dialogs/Media for nonvoice) gains members on POST, loses them on DELETE and
 * updates one on an item PUT; a Team's Users node replaces one member; apiErrors
 * change nothing; any other node's state is the event's object.
 */
export function reduceState(node, cur, ev) {
  const data = ev.data;
  if (data === null || data === undefined || apiErrors(data)) return undefined;
  // A reconciled event (a requestId answered from a snapshot after a gap)
  // carries the node's whole state, not a change.
  if (ev.reconciled) return data;
  if (/\/Dialogs(\/Media)?$/.test(node)) {
    const list = Array.isArray(cur) ? cur.slice() : (dialogList(cur) || []).slice();
    const changed = dialogList(data) || (data.id ? [data] : []);
    for (const d of changed) {
      const i = list.findIndex(x => x.id === d.id);
      if (ev.event === 'DELETE') { if (i >= 0) list.splice(i, 1); } else if (i >= 0) list[i] = d; else list.push(d);
    }
    return list;
  }
  if (/\/Team\/[^/]+\/Users$/.test(node)) {
    // A member update replaces that member's row (fields absent from the
    // update, such as the reasonCode of a member who left NOT_READY, are
    // gone); a whole Team (the form some releases send) replaces the team.
    if (Array.isArray(data.users)) return data;
    if (data.loginId && cur && Array.isArray(cur.users)) {
      const users = cur.users.slice();
      const i = users.findIndex(u => u.loginId === data.loginId);
      if (ev.event === 'DELETE') { if (i >= 0) users.splice(i, 1); } else if (i >= 0) users[i] = data; else users.push(data);
      return { ...cur, users };
    }
  }
  return data;
}
