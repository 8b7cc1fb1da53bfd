// agent.js — the agent desktop tab.
import { RelayClient, RelayError, apiErrors } from '/static/relay-client.js';
import { $, h, since, clock, clockEl, tickClocks, stateLabel, showError, showLink, showLinkBanner, Upstream, showUpstream, logLine } from '/static/ui.js';
import { explainError, describeEvent, callKind, otherParty, myParticipant, labelVariables, partLabel } from '/static/finesse-text.js';

const relay = new RelayClient();
window.relay = relay; // for the browser tests and curious integrators
const upstream = new Upstream();
let me = null;        // latest User
let dialogs = [];
let wrapUps = [];
let nrReasons = [];
let logoutReasons = [];
let layout = [];      // call variable layout [{label, name, header}]
let pendingLabel = ''; // the Not Ready reason this tab asked for during a call
const media = new Map();        // mrdId -> Media state
const mediaDialogs = new Map(); // mrdId -> dialogs
const dialogErrors = new Map(); // dialogId -> error (shown in that call's box)
const inputs = new Map();       // input key -> typed value (kept across re-renders)
const keypadOpen = new Set();   // dialogIds whose keypad is unfolded
const ringing = new Set();      // dialogIds ringing now
const baseTitle = document.title;
let signingOut = false;

const prefs = {
  get notify() { return localStorage.getItem('relay.notify') !== 'off'; },
  set notify(v) { localStorage.setItem('relay.notify', v ? 'on' : 'off'); },
  get sound() { return localStorage.getItem('relay.sound') === 'on'; },
  set sound(v) { localStorage.setItem('relay.sound', v ? 'on' : 'off'); },
};

function showSignIn(msg) {
  $('#app').classList.add('hidden');
  $('#signin').classList.remove('hidden');
  const box = $('#signin-error');
  box.classList.toggle('hidden', !msg);
  box.textContent = msg || '';
  document.title = baseTitle;
}

function showApp() {
  $('#signin').classList.add('hidden');
  $('#app').classList.remove('hidden');
  $('#who-name').textContent = relay.loginId;
  $('#supervisor-link').classList.toggle('hidden', !relay.roles.includes('Supervisor'));
  $('#pref-notify').checked = prefs.notify;
  $('#pref-sound').checked = prefs.sound;
}

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get('error')) { showSignIn(params.get('error')); history.replaceState(null, '', '/'); return; }
  if (params.get('signedout')) { showSignIn('You are signed out of Finesse and of the relay.'); history.replaceState(null, '', '/'); return; }
  try { await relay.resumeSession(); } catch { showSignIn(); return; }
  run();
}

function run() {
  showApp();
  relay.connect();
  loadReasons();
}

async function loadReasons() {
  const log = $('#log');
  try { nrReasons = await relay.reasonCodes('NOT_READY'); } catch (e) { logLine(log, 'Not Ready reason codes unavailable: ' + e.message, true); }
  try { logoutReasons = await relay.reasonCodes('LOGOUT'); } catch { logoutReasons = []; }
  try { wrapUps = await relay.wrapUpReasons(); } catch { wrapUps = []; }
  try { layout = await relay.callVariableLayout(); } catch { layout = []; } // raw names then
  fillReasons($('#nr-reason'), 'Not ready…', nrReasons);
  render();
}

function fillReasons(sel, first, items, current = '') {
  sel.replaceChildren(...(first !== null ? [h('option', { value: '' }, first)] : []),
    ...items.map(r => h('option', { value: r.id, selected: r.id === current }, r.label)));
}

/** Runs a Finesse action: errors show in errBox (and the log); resolves with the outcome event or null. */
async function act(label, fn, errBox, onErr) {
  showError(errBox, null);
  try {
    const { requestId } = await fn();
    const ev = await relay.awaitEvent(requestId).catch(() => null);
    const errs = ev && apiErrors(ev.data);
    if (errs) { fail(label, errs, errBox, onErr); return null; }
    return ev || {};
  } catch (e) {
    fail(label, e, errBox, onErr);
    return null;
  }
}

function fail(label, err, errBox, onErr) {
  const { text, code } = explainError(err);
  logLine($('#log'), `${label} refused: ${text} [${code}]`, true);
  if (onErr) onErr(err);
  else showError(errBox, err);
}

// ---- what may be done now ----
const finesseOK = () => relay.link === 'up' && upstream.view().actionsOK;
const inCall = s => ['RESERVED', 'TALKING', 'HOLD'].includes(s);
const inWrap = s => s === 'WORK' || s === 'WORK_READY';

/** The dialog in wrap-up still lacking a required reason, if any. */
function wrapUpMissing() {
  if (!me || !inWrap(me.state) || !me.settings || me.settings.wrapUpOnIncoming !== 'REQUIRED') return null;
  return dialogs.find(d => myParticipant(d, me.extension).state === 'WRAP_UP' && !(d.mediaProperties || {}).wrapUpReason) || null;
}

function render() { renderUser(); renderDialogs(); renderMedia(); }

function renderUser() {
  if (!me) return;
  const ok = finesseOK();
  const st = $('#agent-state');
  st.dataset.agentState = me.state;
  st.textContent = stateLabel(me.state);
  const rc = me.reasonCode;
  $('#reason').textContent = rc && rc.label ? `Reason: ${rc.label}` : '';
  $('#state-clock').textContent = since(me.stateChangeTime);
  $('#who-name').textContent = [me.firstName, me.lastName].filter(Boolean).join(' ') || me.loginId;
  $('#who-ext').textContent = me.extension ? `ext. ${me.extension}` : '';
  $('#who-team').textContent = me.teamName ? `team ${me.teamName}` : '';

  const pend = $('#pending');
  if (me.pendingState) {
    const what = me.pendingState === 'NOT_READY' && pendingLabel ? `Not ready — ${pendingLabel}` : stateLabel(me.pendingState);
    pend.textContent = `Pending: ${what} (when this call ends)`;
    pend.dataset.pendingState = me.pendingState;
  } else { pendingLabel = ''; delete pend.dataset.pendingState; }
  pend.classList.toggle('hidden', !me.pendingState);

  const wt = $('#wrapup-timer');
  const secs = Number(me.wrapUpTimer || 0);
  wt.classList.toggle('hidden', !(inWrap(me.state) && secs > 0));
  if (inWrap(me.state) && secs > 0) {
    const left = secs - Math.floor((Date.now() - Date.parse(me.stateChangeTime)) / 1000);
    wt.textContent = `Wrap-up ends in ${clock(left)}, then ${me.state === 'WORK' ? 'Not ready' : 'Ready'}`;
  }

  const out = me.state === 'LOGOUT';
  $('#login-row').classList.toggle('hidden', !out);
  $('#state-actions').classList.toggle('hidden', out);
  $('#call-panel').classList.toggle('hidden', out);
  const missing = wrapUpMissing();
  $('#btn-ready').disabled = !ok || !!missing || !['NOT_READY', 'WORK', 'WORK_READY'].includes(me.state);
  // Not Ready reasons: from Ready, wrap-up, a call (pending) and Not Ready itself (changing the reason).
  const nr = $('#nr-reason');
  nr.disabled = !ok || !!missing || !['READY', 'NOT_READY', 'WORK', 'WORK_READY', 'TALKING', 'HOLD', 'RESERVED'].includes(me.state);
  nr.options[0].textContent = me.state === 'NOT_READY' ? 'Change Not ready reason…' : inCall(me.state) ? 'Not ready after this call…' : 'Not ready…';
  $('#btn-login').disabled = !ok;
  $('#dial-button').disabled = !ok || !['NOT_READY', 'READY'].includes(me.state);
  if (!$('#extension').value && me.extension) $('#extension').value = me.extension;
  document.body.dataset.actions = ok ? 'on' : 'off';
}

function remember(key, el) {
  el.value = inputs.get(key) || '';
  el.dataset.key = key;
  el.addEventListener('input', () => inputs.set(key, el.value));
  return el;
}

function renderDialogs() {
  const box = $('#dialogs');
  const focusKey = box.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const focusDialog = focusKey ? document.activeElement.closest('[data-dialog-id]')?.dataset.dialogId : null;
  const ok = finesseOK();
  const ext = me && me.extension;
  updateRinging();
  if (!dialogs.length) { box.replaceChildren(h('div', { class: 'empty' }, 'No calls')); return; }
  box.replaceChildren(...dialogs.map(d => {
    const p = myParticipant(d, ext);
    const acts = new Set(p.actions || []);
    const myExt = ext || p.mediaAddress;
    const mp = d.mediaProperties || {};
    const errBox = h('div', { class: 'action-error hidden', id: `err-${d.id}` });
    if (dialogErrors.has(d.id)) showError(errBox, dialogErrors.get(d.id));
    const onErr = e => { dialogErrors.set(d.id, e); renderDialogs(); };
    const run = (label, fn) => { dialogErrors.delete(d.id); act(label, fn, null, onErr); };
    const btn = (action, label, fn, cls) => acts.has(action)
      ? h('button', { type: 'button', class: cls, 'data-action': action, 'data-key': `${d.id}:${action}`, disabled: !ok, 'aria-describedby': errBox.id, onclick: () => run(label, fn) }, label) : null;
    const withNumber = (action, label, placeholder, fn) => {
      if (!acts.has(action)) return null;
      const input = remember(`${d.id}:${action}:to`, h('input', { placeholder, size: 12, inputmode: 'tel', 'aria-label': `${label}: number`, 'aria-describedby': errBox.id }));
      return h('form', { class: 'row', onsubmit: e => { e.preventDefault(); const to = input.value.trim(); if (to) { inputs.delete(input.dataset.key); run(label, () => fn(to)); } } },
        input, h('button', { type: 'submit', 'data-action': action, 'data-key': `${d.id}:${action}`, disabled: !ok }, label));
    };
    const open = keypadOpen.has(d.id);
    const keypad = acts.has('SEND_DTMF') ? [
      h('button', { type: 'button', class: 'link', 'aria-expanded': String(open), 'aria-controls': `keypad-${d.id}`, 'data-key': `${d.id}:keypad`,
        onclick: () => { open ? keypadOpen.delete(d.id) : keypadOpen.add(d.id); renderDialogs(); } }, open ? 'Hide keypad' : 'Keypad'),
      open ? h('div', { class: 'keypad', id: `keypad-${d.id}`, role: 'group', 'aria-label': 'Keypad (sends tones)' },
        ...'123456789*0#'.split('').map(k => h('button', { type: 'button', 'data-key': `${d.id}:dtmf${k}`, disabled: !ok, onclick: () => run('Keypad', () => relay.sendDtmf(d.id, myExt, k)) }, k))) : null,
    ] : null;
    const vars = labelVariables(d, layout);
    const headerVar = vars.find(v => v.header);
    const inWrapUp = p.state === 'WRAP_UP';
    return h('article', { class: 'dialog' + (p.state === 'ALERTING' ? ' alerting' : ''), 'data-dialog-id': d.id, 'aria-label': `${callKind(d, myExt)} call ${otherParty(d, myExt)}` },
      h('div', { class: 'head' },
        h('span', { class: 'num' }, otherParty(d, myExt) || 'unknown'),
        h('span', { class: 'badge ' + p.state, 'data-part-state': p.state }, partLabel(p.state))),
      h('div', { class: 'muted small' }, [callKind(d, myExt), mp.queueName && `queue ${mp.queueName}`].filter(Boolean).join(' · '),
        headerVar ? h('strong', { class: 'hdr-var' }, ` · ${headerVar.label}: ${headerVar.value}`) : null),
      h('div', { class: 'small timers' },
        p.startTime && p.state !== 'ALERTING' ? clockEl(p.startTime, 'Call ', { 'data-timer': 'call' }) : null,
        p.state === 'HELD' ? [' · ', clockEl(p.stateChangeTime, 'on hold ', { 'data-timer': 'hold' })] : null,
        p.state === 'ALERTING' ? clockEl(p.stateChangeTime, 'Ringing ', { 'data-timer': 'ring' }) : null),
      vars.length ? h('dl', { class: 'vars' }, ...vars.filter(v => !v.header).flatMap(v => [h('dt', { title: v.name }, v.label), h('dd', {}, v.value)])) : null,
      h('div', { class: 'row' },
        btn('ANSWER', 'Answer', () => relay.answer(d.id, myExt), 'primary'),
        btn('HOLD', 'Hold', () => relay.hold(d.id, myExt)),
        btn('RETRIEVE', 'Retrieve', () => relay.retrieve(d.id, myExt), 'primary'),
        btn('TRANSFER', 'Complete transfer', () => relay.transfer(d.id, myExt)),
        btn('CONFERENCE', 'Conference', () => relay.conference(d.id, myExt)),
        btn('DROP', 'End call', () => relay.drop(d.id, myExt), 'danger')),
      withNumber('CONSULT_CALL', 'Consult', 'Consult to…', to => relay.consult(d.id, myExt, to)),
      withNumber('TRANSFER_SST', 'Transfer', 'Transfer to…', to => relay.singleStepTransfer(d.id, myExt, to)),
      keypad,
      inWrapUp || (acts.has('UPDATE_CALL_DATA') && me && inWrap(me.state)) ? wrapUpBox(d, ok, errBox, run) : null,
      errBox);
  }));
  if (focusKey) {
    const again = box.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)
      || (focusDialog && box.querySelector(`[data-dialog-id="${CSS.escape(focusDialog)}"] button:not(:disabled)`));
    if (again) again.focus();
  }
}

function wrapUpBox(d, ok, errBox, run) {
  const saved = (d.mediaProperties || {}).wrapUpReason || '';
  const required = me && me.settings && me.settings.wrapUpOnIncoming === 'REQUIRED';
  const sel = remember(`${d.id}:wrapup`, h('select', { id: `wrapup-${d.id}`, 'aria-describedby': errBox.id },
    h('option', { value: '' }, 'Choose…'), ...wrapUps.map(w => h('option', { value: w.label }, w.label))));
  if (!sel.value && saved) sel.value = saved;
  return h('div', { class: 'wrapup stack' },
    h('form', { class: 'row', onsubmit: e => { e.preventDefault(); if (sel.value) run('Wrap-up reason', () => relay.updateCallData(d.id, { wrapUpReason: sel.value })); } },
      h('label', { for: sel.id }, 'Wrap-up reason'), sel,
      h('button', { type: 'submit', 'data-action': 'WRAPUP', 'data-key': `${d.id}:WRAPUP`, disabled: !ok }, saved ? 'Change' : 'Apply')),
    saved ? h('div', { class: 'ok-line small', 'data-wrapup-saved': saved }, `✓ Saved: ${saved}`)
      : required ? h('div', { class: 'warn-line small', 'data-wrapup-required': '' }, 'A wrap-up reason is required before you leave wrap-up.') : null);
}

function renderMedia() {
  const panel = $('#media-panel');
  panel.classList.toggle('hidden', media.size === 0 && mediaDialogs.size === 0);
  const ids = new Set([...media.keys(), ...mediaDialogs.keys()]);
  $('#media').replaceChildren(...[...ids].map(id => {
    const m = media.get(id) || {};
    const list = mediaDialogs.get(id) || [];
    const rc = m.reasonCode || {};
    const name = m.name || m.mediaName || m.mrdName || (m.mrd && m.mrd.name) || `Media ${id}`;
    return h('div', { class: 'media-row', 'data-mrd': id },
      h('div', { class: 'row' }, h('strong', {}, name), h('span', { class: 'dot', 'data-agent-state': m.state || 'LOGOUT' }, stateLabel(m.state)), rc.label ? h('span', { class: 'muted small' }, rc.label) : null),
      list.length ? h('ul', { class: 'media-dialogs' }, ...list.map(x => h('li', {}, `${x.mediaType || ''} ${x.fromAddress || ''} — ${x.state || ''}`))) : null);
  }));
}

// ---- incoming calls: title, announcement, notification, sound ----
function updateRinging() {
  const ext = me && me.extension;
  const now = new Set(dialogs.filter(d => myParticipant(d, ext).state === 'ALERTING').map(d => d.id));
  for (const id of now) {
    if (ringing.has(id)) continue;
    const d = dialogs.find(x => x.id === id);
    const from = otherParty(d, ext);
    $('#ring-announce').textContent = `Incoming ${callKind(d, ext).toLowerCase()} call from ${from}`;
    notify(d, from);
  }
  ringing.clear();
  for (const id of now) ringing.add(id);
  if (ringing.size) {
    const d = dialogs.find(x => ringing.has(x.id));
    document.title = `☎ Incoming call: ${otherParty(d, ext)} · Agent desktop`;
    startSound();
  } else {
    if (document.title !== baseTitle) document.title = baseTitle;
    stopSound();
  }
}

function notify(d, from) {
  if (!prefs.notify || !('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification('Incoming call', { body: `${callKind(d, me.extension)} call from ${from}`, tag: 'relay-call-' + d.id });
    n.onclick = () => { window.focus(); n.close(); };
  } catch { /* notifications unavailable */ }
}

let audio = null;
let soundTimer = null;
function startSound() {
  if (!prefs.sound || soundTimer) return;
  const beep = () => {
    try {
      audio = audio || new AudioContext();
      const o = audio.createOscillator(); const g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.08;
      o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.35);
    } catch { /* no audio */ }
  };
  beep();
  soundTimer = setInterval(beep, 2000);
  document.body.dataset.ringSound = 'on';
}
function stopSound() { clearInterval(soundTimer); soundTimer = null; delete document.body.dataset.ringSound; }

// ---- sign out (Finesse: LOGOUT from NOT_READY with a logout reason, then the relay session) ----
function openSignOut() {
  const dlg = $('#signout-dialog');
  showError($('#signout-error'), null);
  const state = me ? me.state : 'LOGOUT';
  const text = $('#signout-text');
  const confirm = $('#signout-confirm');
  $('#signout-nr').classList.add('hidden');
  $('#signout-reason-row').classList.toggle('hidden', state === 'LOGOUT' || !logoutReasons.length);
  fillReasons($('#signout-reason'), null, logoutReasons);
  confirm.disabled = false;
  if (state === 'LOGOUT') {
    text.textContent = 'You are not signed in to a phone. Sign out of the relay?';
    confirm.textContent = 'Sign out';
  } else if (inCall(state)) {
    text.textContent = 'You are on a call. Finesse signs you out only from Not ready: end the call first (or choose "Not ready after this call"), then sign out.';
    confirm.disabled = true;
    $('#signout-reason-row').classList.add('hidden');
  } else if (state === 'NOT_READY') {
    text.textContent = logoutReasons.length ? 'Choose why you are signing out. Finesse logs you out of your phone and this desktop.' : 'Finesse logs you out of your phone and this desktop.';
    confirm.textContent = 'Sign out';
  } else {
    text.textContent = `Finesse signs you out only from Not ready; you are ${stateLabel(state)}. Go Not ready first, then sign out?`;
    $('#signout-nr').classList.toggle('hidden', !nrReasons.length);
    fillReasons($('#signout-nr-reason'), null, nrReasons);
    confirm.textContent = 'Go Not ready and sign out';
  }
  confirm.disabled = confirm.disabled || (state !== 'LOGOUT' && !finesseOK());
  dlg.showModal();
}

/** Waits until the User's state is one of states (or timeout ms). */
function userState(states, timeout = 10000) {
  return new Promise(resolve => {
    const done = ok => { clearInterval(t); clearTimeout(to); resolve(ok); };
    const t = setInterval(() => { if (me && states.includes(me.state)) done(true); }, 50);
    const to = setTimeout(() => done(false), timeout);
  });
}

async function confirmSignOut() {
  const err = $('#signout-error');
  const confirm = $('#signout-confirm');
  confirm.disabled = true;
  signingOut = true;
  try {
    if (me && me.state !== 'LOGOUT') {
      if (me.state !== 'NOT_READY') {
        const nr = await act('Not ready', () => relay.setState('NOT_READY', $('#signout-nr-reason').value || undefined), err);
        if (!nr || !(await userState(['NOT_READY']))) { confirm.disabled = false; return; }
      }
      const reason = logoutReasons.length ? $('#signout-reason').value : undefined;
      const ok = await act('Sign out', () => relay.logout(reason), err);
      if (!ok || !(await userState(['LOGOUT']))) { confirm.disabled = false; return; }
    }
    await relay.signOut().catch(() => {});
    location.href = '/?signedout=1';
  } finally { signingOut = false; }
}

// ---- events ----
relay.onState((node, data) => {
  const userNode = `/finesse/api/User/${relay.loginId}`;
  if (node === userNode && data && data.loginId) {
    const was = me && me.state;
    me = data;
    if (was !== data.state && was !== undefined) {
      const rc = data.reasonCode && data.reasonCode.label ? `, ${data.reasonCode.label}` : '';
      $('#announce').textContent = `Your state: ${stateLabel(data.state)}${rc}`;
    }
    render();
    if (was && was !== 'LOGOUT' && data.state === 'LOGOUT' && !signingOut) {
      const rc = data.reasonCode && data.reasonCode.label ? ` (${data.reasonCode.label})` : '';
      showError($('#login-error'), null);
      logLine($('#log'), `You were signed out of Finesse${rc}.`, true);
      $('#finesse-banner').className = 'banner bad';
      $('#finesse-banner').textContent = `You were signed out of Finesse${rc}. Sign in to your phone again to take calls.`;
    }
  } else if (node === `${userNode}/Dialogs/Media`) {
    // Nonvoice dialogs (chat, email) of every media routing domain, grouped
    // by the MRD they belong to.
    const list = Array.isArray(data) ? data : (data && data.dialogs) || [];
    mediaDialogs.clear();
    for (const d of list) {
      const id = (d.mediaProperties && d.mediaProperties.mediaId) || d.mediaType || 'media';
      if (!mediaDialogs.has(id)) mediaDialogs.set(id, []);
      mediaDialogs.get(id).push(d);
    }
    renderMedia();
  } else if (node === `${userNode}/Dialogs`) {
    dialogs = Array.isArray(data) ? data : (data && data.dialogs) || [];
    for (const id of dialogErrors.keys()) if (!dialogs.some(d => d.id === id)) dialogErrors.delete(id);
    render();
  } else if (node.startsWith(`${userNode}/Media/`)) {
    const [mrd, sub] = node.slice(`${userNode}/Media/`.length).split('/');
    if (sub === 'Dialogs') { if (data === null) mediaDialogs.delete(mrd); else mediaDialogs.set(mrd, Array.isArray(data) ? data : (data && data.dialogs) || []); }
    else if (!sub) { if (data === null) media.delete(mrd); else media.set(mrd, data); }
    renderMedia();
  }
});
relay.onEvent(ev => { const { text, err } = describeEvent(ev, me && me.extension); logLine($('#log'), text, err); });
relay.onLink(link => {
  showLink($('#conn'), link);
  showLinkBanner($('#relay-banner'), link);
  render();
  if (link === 'signed_out' || link === 'expired') {
    setTimeout(() => showSignIn(link === 'expired' ? 'Your SSO session expired. Please sign in again.' : 'You were signed out. Please sign in again.'), 300);
  }
});
relay.onStatus(st => { showUpstream($('#upstream'), $('#finesse-banner'), upstream.update(st)); render(); });
relay.onError(e => { if (e instanceof RelayError && e.code && e.code !== 'signed_out' && e.code !== 'expired') logLine($('#log'), `${e.code}: ${e.message || ''}`, true); });

$('#btn-ready').addEventListener('click', () => {
  if (prefs.notify && 'Notification' in window && Notification.permission === 'default') Notification.requestPermission().catch(() => {});
  act('Ready', () => relay.setState('READY'), $('#state-error'));
});
$('#nr-reason').addEventListener('change', e => {
  const v = e.target.value;
  const label = e.target.selectedOptions[0] ? e.target.selectedOptions[0].textContent : '';
  e.target.value = '';
  if (!v) return;
  if (me && inCall(me.state)) pendingLabel = label;
  act('Not ready', () => relay.setState('NOT_READY', v), $('#state-error'));
});
$('#btn-login').addEventListener('click', () => {
  const ext = $('#extension').value.trim();
  if (!ext) { $('#extension').focus(); return; }
  $('#finesse-banner').classList.add('hidden');
  act('Sign in to phone', () => relay.login(ext), $('#login-error'));
});
$('#dial-form').addEventListener('submit', e => {
  e.preventDefault();
  const to = $('#dial-to').value.trim();
  if (to) act('Call', () => relay.makeCall(me.extension, to), $('#dial-error')).then(ok => { if (ok) $('#dial-to').value = ''; });
});
$('#signout').addEventListener('click', openSignOut);
$('#signout-cancel').addEventListener('click', () => $('#signout-dialog').close());
$('#signout-confirm').addEventListener('click', confirmSignOut);
$('#pref-notify').addEventListener('change', e => {
  prefs.notify = e.target.checked;
  if (e.target.checked && 'Notification' in window && Notification.permission === 'default') Notification.requestPermission().catch(() => {});
});
$('#pref-sound').addEventListener('change', e => { prefs.sound = e.target.checked; if (!e.target.checked) stopSound(); });
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
setInterval(() => { if (me) renderUserClock(); tickClocks($('#dialogs')); }, 1000);
function renderUserClock() {
  $('#state-clock').textContent = since(me.stateChangeTime);
  if (inWrap(me.state)) renderUser();
}
start();
