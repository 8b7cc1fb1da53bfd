// The browser protocol, tested from the README's contract alone, in a second
// language: a Node client signs in, opens the WebSocket, changes state through
// the REST proxy and checks the event, resumes, and is refused where the
// contract says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startDemo, postJSON } from '../lib/demo.mjs';

let demo;
before(async () => { demo = await startDemo(); });
after(async () => { if (demo) await demo.stop(); });

/** Opens the WebSocket and collects messages; next(pred) waits for one. */
function open(url, headers = {}) {
  const ws = new WebSocket(url, { headers });
  const msgs = [];
  const waiters = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    msgs.push(m);
    for (const w of waiters.slice()) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  const closed = new Promise(r => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  const next = (pred, ms = 8000) => {
    const have = msgs.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      waiters.push(w);
      setTimeout(() => reject(new Error('timeout; got ' + JSON.stringify(msgs.slice(-5)))), ms);
    });
  };
  return { ws, msgs, next, closed, opened: new Promise((r, j) => { ws.on('open', r); ws.on('error', j); ws.on('unexpected-response', (_, res) => j(new Error('HTTP ' + res.statusCode))); }) };
}

const wsURL = (ticket, since) => demo.base.replace('http', 'ws') + `/ws?ticket=${encodeURIComponent(ticket)}` + (since !== undefined ? `&since=${since}` : '');

async function signIn(loginId = '1001') {
  const r = await postJSON(demo.base + '/api/v1/sessions', { loginId, password: 'demo' });
  assert.equal(r.status, 201, r.text);
  for (const k of ['loginId', 'session', 'ticket', 'ticketExpiresIn']) assert.ok(k in r.json, k);
  return r.json;
}

async function putState(session, state) {
  const rsp = await fetch(demo.base + '/api/finesse/User/1001', {
    method: 'PUT', headers: { Authorization: 'Bearer ' + session, 'Content-Type': 'application/xml' },
    body: `<User><state>${state}</state>${state === 'LOGIN' ? '<extension>51001</extension>' : ''}</User>`,
  });
  assert.equal(rsp.status, 202, await rsp.text());
  return rsp.headers.get('requestId');
}

async function ticket(session) {
  const r = await postJSON(demo.base + '/api/v1/tickets', undefined, { Authorization: 'Bearer ' + session });
  assert.equal(r.status, 201, r.text);
  return r.json.ticket;
}

test('welcome, snapshot state, then an event with the requestId of a REST change, in seq order', async () => {
  const s = await signIn();
  const c = open(wsURL(s.ticket));
  await c.opened;
  const welcome = await c.next(m => m.type === 'welcome');
  assert.equal(welcome.agent, '1001');
  assert.equal(welcome.resumed, false);
  assert.equal(typeof welcome.seq, 'number');
  assert.equal(typeof welcome.heartbeat, 'number');
  const user = await c.next(m => m.type === 'state' && m.node === '/finesse/api/User/1001');
  assert.equal(user.data.loginId, '1001');
  const second = open(wsURL(await ticket(s.session)));
  await second.opened;
  await second.next(m => m.type === 'welcome');

  const rid = await putState(s.session, user.data.state === 'LOGOUT' ? 'LOGIN' : 'READY');
  const ev = await c.next(m => m.type === 'event' && m.requestId === rid);
  const ev2 = await second.next(m => m.type === 'event' && m.requestId === rid);
  assert.equal(ev.node, '/finesse/api/User/1001');
  assert.equal(ev.event, 'PUT');
  assert.ok(ev.seq > welcome.seq);
  assert.equal(ev2.seq, ev.seq, 'both connections see the same seq');
  const seqs = c.msgs.filter(m => m.type === 'event').map(m => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

  // ping → reply
  c.ws.send(JSON.stringify({ type: 'ping', id: 'p1' }));
  await c.next(m => m.type === 'reply' && m.id === 'p1');
  c.ws.close(); second.ws.close();
});

test('resume after a dropped connection replays exactly what was missed', async () => {
  const s = await signIn();
  const c = open(wsURL(s.ticket));
  await c.opened;
  const w = await c.next(m => m.type === 'welcome');
  await c.next(m => m.type === 'state' && m.node === '/finesse/api/User/1001');
  c.ws.terminate();
  await c.closed;
  const last = Math.max(w.seq, ...c.msgs.filter(m => typeof m.seq === 'number').map(m => m.seq));
  const rid = await putState(s.session, 'NOT_READY');
  const r = open(wsURL(await ticket(s.session), last));
  await r.opened;
  const w2 = await r.next(m => m.type === 'welcome');
  assert.equal(w2.resumed, true);
  const ev = await r.next(m => m.type === 'event' && m.requestId === rid);
  assert.ok(ev.seq > last);
  r.ws.close();
});

test('refusals: replayed ticket, unknown ticket, wrong Origin, bad JSON, unknown type, forbidden node', async () => {
  const s = await signIn();
  const c = open(wsURL(s.ticket));
  await c.opened;
  await c.next(m => m.type === 'welcome');
  await assert.rejects(open(wsURL(s.ticket)).opened, /HTTP 401/, 'a ticket is single-use');
  await assert.rejects(open(wsURL('not-a-ticket')).opened, /HTTP 401/);
  await assert.rejects(open(wsURL(await ticket(s.session)), { Origin: 'https://evil.example' }).opened, /HTTP 403/);
  c.ws.send('{not json');
  assert.equal((await c.next(m => m.type === 'error' && m.code === 'bad_request')).type, 'error');
  c.ws.send(JSON.stringify({ type: 'teleport', id: 'x1' }));
  assert.equal((await c.next(m => m.type === 'error' && m.code === 'unknown_type')).id, 'x1');
  c.ws.send(JSON.stringify({ type: 'subscribe', id: 'x2', node: '/finesse/api/Team/10/Users' }));
  assert.equal((await c.next(m => m.type === 'error' && m.id === 'x2')).code, 'forbidden', 'an agent may not watch the team');
  c.ws.close();
});

test('sign-in with a wrong password is refused with invalid_credentials', async () => {
  const r = await postJSON(demo.base + '/api/v1/sessions', { loginId: '1002', password: 'wrong' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'invalid_credentials');
});
