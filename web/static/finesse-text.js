// finesse-text.js — words for what Finesse says: state labels, refused
// actions (Finesse error codes as sentences, with the raw code kept for
// support), call kinds and event-log lines. Pure functions, no DOM: the
// pages use them and the Node unit tests check them.
import { apiErrors, parseList } from './relay-client.js';

const STATES = {
  NOT_READY: 'Not ready', READY: 'Ready', TALKING: 'Talking', HOLD: 'On hold', RESERVED: 'Reserved (ringing)',
  RESERVED_OUTBOUND: 'Reserved (outbound)', RESERVED_OUTBOUND_PREVIEW: 'Reserved (preview)',
  WORK: 'Wrap-up', WORK_READY: 'Wrap-up (then ready)', LOGOUT: 'Logged out', LOGIN: 'Signing in', UNKNOWN: 'Unknown',
};
/** A person's words for a Finesse agent state. */
export const stateLabel = s => STATES[s] || s || '—';

/** Words for a participant state (my leg of a call). */
export const partLabel = s => ({
  ALERTING: 'Ringing', ACTIVE: 'Connected', HELD: 'On hold', INITIATING: 'Dialling', INITIATED: 'Dialling',
  WRAP_UP: 'Wrap-up', DROPPED: 'Ended', FAILED: 'Failed', ACCEPTED: 'Accepted',
}[s] || s || '');

// Finesse/CTI error messages (errorMessage of an apiError) as sentences.
const CTI = {
  CF_INVALID_DESTINATION: 'That number cannot be dialled. Check it and try again.',
  CF_RESOURCE_BUSY: 'That extension is busy on another call.',
  CF_RESOURCE_OUT_OF_SERVICE: 'That agent is not signed in to a phone.',
  CF_INVALID_OBJECT_STATE: 'The call changed before the request reached it. Look at the call and try again.',
  CF_INVALID_CALLID_SPECIFIED: 'That call has already ended.',
  CF_INVALID_LOGON_DEVICE_SPECIFIED: 'That extension is not a phone you can sign in on. Check the extension.',
  E_CTI_DEVICE_IN_USE: 'Another agent is already signed in on that extension.',
  CF_INVALID_AGENT_WORKMODE: 'Finesse does not allow that change now (for example, a second Not Ready reason during a call).',
  CF_GENERIC_UNSPECIFIED_REJECTION: 'The phone system refused the request.',
  UNAUTHORIZED: 'Finesse did not accept your credentials. Sign in again.',
  OUT_OF_SERVICE: 'Finesse is out of service. Try again when it is back.',
};
// Error types (errorType) when the message is not one of the above.
const TYPES = {
  'Invalid State': 'Finesse does not allow that in your current state.',
  'Invalid Input': 'Finesse refused a value in the request.',
  'Parameter Missing': 'Something required was missing from the request.',
  'Service Unavailable': 'Finesse is out of service. Try again when it is back.',
  'Authorization Failure': 'You are not allowed to do that.',
  'Authentication Failure': 'Finesse did not accept your credentials. Sign in again.',
  'Not Found': 'Finesse no longer has that (it may have just ended).',
  'Call Operation Failure': 'The phone system refused the request.',
  'Device Busy': 'Another agent is already signed in on that extension.',
  'Invalid Device': 'That extension is not a phone you can sign in on. Check the extension.',
};

/**
 * Explains a refused action: from apiErrors ([{errorType, errorMessage,
 * errorData}]), an event's data, a RelayError (its body holds Finesse's
 * ApiErrors XML or the relay's JSON error) or any Error. Returns
 * {text, code}: a sentence for the agent and the raw code for support.
 */
export function explainError(err) {
  let errs = Array.isArray(err) ? err : apiErrors(err);
  if (!errs && err && typeof err.body === 'string' && /<ApiError>/i.test(err.body)) {
    errs = parseList(err.body, 'ApiError', ['errorType', 'errorMessage', 'errorData']);
  }
  if (errs && errs.length) {
    const e = errs[0];
    const msg = e.errorMessage || '';
    const text = CTI[msg] || CTI[e.errorData] || TYPES[e.errorType] || (msg ? `Finesse refused: ${msg}` : 'Finesse refused the request.');
    const code = [e.errorType, msg, e.errorData].filter(Boolean).join(' · ');
    return { text: text + (e.errorType === 'Invalid State' && msg && !CTI[msg] ? ` (${msg})` : ''), code };
  }
  if (err && err.status === 503) return { text: 'Finesse is out of service. Try again when it is back.', code: `HTTP 503 ${err.code || ''}`.trim() };
  if (err && err.status === 401) return { text: 'Your session has ended. Sign in again.', code: `HTTP 401 ${err.code || ''}`.trim() };
  if (err && err.code === 'timeout') return { text: 'Finesse did not confirm the request in time; check the call or your state.', code: 'timeout' };
  if (err && (err.name === 'TypeError' || err.status === 0)) return { text: 'The relay could not be reached. Check your network; the page reconnects by itself.', code: String(err.message || err) };
  const status = err && err.status ? `HTTP ${err.status} ` : '';
  return { text: 'The request was refused.', code: (status + ((err && (err.code || err.message)) || String(err))).trim() };
}

/** What kind of call d is, from my extension's point of view. */
export function callKind(d, ext) {
  const ct = (d.mediaProperties || {}).callType || '';
  switch (ct) {
    case 'ACD_IN': case 'PREROUTE_ACD_IN': case 'PREROUTE_DIRECT_AGENT': case 'OVERFLOW_IN': case 'OTHER_IN': return 'Inbound';
    case 'TRANSFER': return 'Transferred in';
    case 'OUT': case 'AGENT_OUT': case 'AUTO_OUT': return 'Outbound';
    case 'CONSULT': return d.fromAddress === ext ? 'Consult (outgoing)' : 'Consult (incoming)';
    case 'CONFERENCE': return 'Conference';
    case 'SUPERVISOR_MONITOR': return 'Silent monitor';
    case 'AGENT_INSIDE': return d.fromAddress === ext ? 'Internal (outgoing)' : 'Internal (incoming)';
  }
  return ct ? ct.replace(/_/g, ' ').toLowerCase() : 'Call';
}

/** The other party of d for ext. */
export function otherParty(d, ext) {
  if (d.fromAddress === ext) return d.toAddress || '';
  return d.fromAddress || '';
}

/** My participant of d (by extension), or the first one. */
export function myParticipant(d, ext) {
  const ps = d.participants || [];
  return ps.find(p => p.mediaAddress === ext) || ps[0] || { actions: [] };
}

/**
 * Call variables labelled by the layout ([{label, name, header}]):
 * layout entries first (mediaProperties fields such as queueName too), then
 * any other non-empty variable under its raw name.
 */
export function labelVariables(d, layout = []) {
  const mp = d.mediaProperties || {};
  const vars = new Map((mp.callVariables || mp.callvariables || []).filter(v => v.value).map(v => [v.name, v.value]));
  const out = [];
  const used = new Set();
  for (const e of layout) {
    const v = vars.has(e.name) ? vars.get(e.name) : (typeof mp[e.name] === 'string' ? mp[e.name] : '');
    used.add(e.name);
    if (v) out.push({ label: e.label, name: e.name, value: v, header: !!e.header });
  }
  for (const [name, value] of vars) if (!used.has(name)) out.push({ label: name, name, value, header: false });
  return out;
}

/** A human line for a WebSocket event (ext: the agent's extension). */
export function describeEvent(ev, ext = '') {
  const errs = apiErrors(ev.data);
  const what = ev.node.replace('/finesse/api/', '');
  if (errs) { const x = explainError(errs); return { text: `${what}: refused — ${x.text} [${x.code}]`, err: true }; }
  const d = ev.data || {};
  if (d.state && d.loginId) {
    const rc = d.reasonCode && d.reasonCode.label ? ` (${d.reasonCode.label})` : '';
    const pend = d.pendingState ? `, then ${stateLabel(d.pendingState)}` : '';
    return { text: `${d.loginId} → ${stateLabel(d.state)}${rc}${pend}` };
  }
  if (Array.isArray(d.dialogs) && ev.node.endsWith('/Dialogs/Media')) {
    const list = d.dialogs.map(x => `${x.mediaType || 'media'} ${x.state || ''}`.trim()).join(', ');
    return { text: `${ev.event === 'POST' ? 'New conversation' : ev.event === 'DELETE' ? 'Conversation ended' : 'Conversations changed'}: ${list}` };
  }
  if (Array.isArray(d.dialogs)) {
    const list = d.dialogs.map(x => `${callKind(x, ext).toLowerCase()} ${x.fromAddress === ext ? 'to ' + x.toAddress : 'from ' + x.fromAddress}`).join(', ');
    return { text: `${ev.event === 'POST' ? 'New call' : ev.event === 'DELETE' ? 'Call removed' : 'Calls changed'}: ${list}` };
  }
  if (d.status && (d.primaryNode || d.xmppDomain)) return { text: `Finesse reports ${d.status}${d.statusReason ? ` (${d.statusReason})` : ''}`, err: d.status !== 'IN_SERVICE' };
  if (d.participants) {
    const p = myParticipant(d, ext);
    const label = d.state === 'DROPPED' ? 'ended (DROPPED)' : partLabel(p.state).toLowerCase();
    return { text: `${callKind(d, ext)} call ${ext && d.fromAddress === ext ? 'to ' + d.toAddress : 'from ' + d.fromAddress}: ${label}` };
  }
  return { text: `${what}: ${ev.event}` };
}
