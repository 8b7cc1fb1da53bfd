// Unit tests of relay-client.js: reconnect, backoff, resume, heartbeat and
// the 202-then-event pattern, with a fake WebSocket, fetch and timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient, backoff, reduceState, CloseCodes } from '../../client/relay-client.js';

class FakeTimers {
  constructor() { this.now = 0; this.queue = []; this.seq = 0; }
  setTimeout = (fn, ms) => { const id = ++this.seq; this.queue.push({ id, at: this.now + ms, fn }); return id; };
  clearTimeout = (id) => { this.queue = this.queue.filter(t => t.id !== id); };
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const t = this.queue[0];
      if (!t || t.at > end) break;
      this.queue.shift(); this.now = t.at; t.fn();
      await new Promise(r => setImmediate(r));
    }
    this.now = end;
  }
}

function harness() {
  const sockets = [];
  class FakeWS {
    constructor(url) { this.url = url; this.readyState = 1; this.sent = []; sockets.push(this); }
    send(s) { this.sent.push(JSON.parse(s)); }
    close(code = 1000) { this.readyState = 3; }
    recv(m) { this.onmessage({ data: JSON.stringify(m) }); }
    drop(code, reason = '') { this.readyState = 3; this.onclose({ code, reason }); }
  }
  const calls = [];
  let ticketN = 0;
  let ticketStatus = 201;
  const fetch = async (url, init) => {
    calls.push({ url, init });
    if (url.endsWith('/api/v1/tickets') || url.endsWith('/api/v1/sessions')) {
      const body = ticketStatus === 201
        ? { loginId: '1001', roles: ['Agent'], session: 's', ticket: 't' + (++ticketN), ticketExpiresIn: 30 }
        : { error: { code: 'unauthenticated', message: 'not signed in' } };
      return { ok: ticketStatus === 201, status: ticketStatus, text: async () => JSON.stringify(body), headers: new Map() };
    }
    if (url.includes('/api/finesse/')) {
      return { ok: true, status: 202, text: async () => '', headers: new Map([['requestId', init.headers.requestId]]) };
    }
    throw new Error('unexpected ' + url);
  };
  const timers = new FakeTimers();
  const client = new RelayClient({ baseURL: 'http://relay', fetch, WebSocket: FakeWS, timers, random: () => 0.5 });
  return { client, sockets, calls, timers, setTicketStatus: s => { ticketStatus = s; } };
}

const tick = () => new Promise(r => setImmediate(r));

test('backoff grows exponentially, is capped and jittered', () => {
  assert.equal(backoff(0, { random: () => 0.5 }), 500);
  assert.equal(backoff(3, { random: () => 0.5 }), 4000);
  assert.equal(backoff(20, { random: () => 0.5 }), 15000);
  assert.equal(backoff(1, { random: () => 0 }), 750);
  assert.equal(backoff(1, { random: () => 1 }), 1250);
});

test('connects with the ticket, then resumes from the last seq after a drop', async () => {
  const { client, sockets, timers } = harness();
  const states = [];
  client.onConnection(s => states.push(s));
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  assert.equal(sockets.length, 1);
  assert.match(sockets[0].url, /^ws:\/\/relay\/ws\?ticket=t1$/);
  sockets[0].recv({ type: 'welcome', agent: '1001', roles: ['Agent'], seq: 7, resumed: false, heartbeat: 25, stream: 'st1' });
  sockets[0].recv({ type: 'state', seq: 7, node: '/finesse/api/User/1001', data: { loginId: '1001', state: 'NOT_READY' } });
  sockets[0].recv({ type: 'event', seq: 8, node: '/finesse/api/User/1001', event: 'PUT', data: { loginId: '1001', state: 'READY' } });
  assert.equal(client.lastSeq, 8);
  assert.equal(client.states.get('/finesse/api/User/1001').state, 'READY');

  sockets[0].drop(CloseCodes.QUEUE_OVERFLOW);
  assert.equal(client.connection, 'reconnecting');
  await timers.advance(500); // first backoff
  await tick();
  assert.equal(sockets.length, 2, 'reconnected');
  assert.match(sockets[1].url, /ticket=t2&since=8&stream=st1$/, 'a fresh ticket, the resume point and the stream it belongs to');
  assert.ok(states.includes('up'));
});

test('stops for good on signed_out and session_expired close codes', async () => {
  for (const [code, want] of [[4100, 'signed_out'], [4101, 'expired'], [4103, 'signed_out']]) {
    const { client, sockets, timers } = harness();
    await client.signIn({ loginId: '1001', password: 'demo' });
    client.connect();
    await tick();
    sockets[0].drop(code);
    await timers.advance(60000);
    assert.equal(sockets.length, 1, `no reconnect after ${code}`);
    assert.equal(client.connection, want);
  }
});

test('a 401 on the ticket request means signed out, not a retry loop', async () => {
  const { client, sockets, timers, setTicketStatus } = harness();
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  setTicketStatus(401);
  sockets[0].drop(1006);
  await timers.advance(1000);
  await tick();
  assert.equal(client.connection, 'signed_out');
  await timers.advance(60000);
  assert.equal(sockets.length, 1);
});

test('shutdown close code starts over without a resume point', async () => {
  const { client, sockets, timers } = harness();
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  sockets[0].recv({ type: 'welcome', agent: '1001', seq: 3, resumed: false, heartbeat: 25 });
  sockets[0].drop(CloseCodes.SHUTDOWN);
  await timers.advance(1000);
  await tick();
  assert.doesNotMatch(sockets[1].url, /since=/);
});

test('sends a heartbeat ping every heartbeat seconds', async () => {
  const { client, sockets, timers } = harness();
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  sockets[0].recv({ type: 'welcome', agent: '1001', seq: 0, resumed: false, heartbeat: 10 });
  await timers.advance(10000);
  await timers.advance(10000);
  assert.equal(sockets[0].sent.filter(m => m.type === 'ping').length, 2);
});

test('awaitEvent resolves with the event carrying the requestId of a 202', async () => {
  const { client, sockets } = harness();
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  const { status, requestId } = await client.setState('READY');
  assert.equal(status, 202);
  const p = client.awaitEvent(requestId);
  sockets[0].recv({ type: 'event', seq: 1, node: '/finesse/api/User/1001', event: 'PUT', requestId: 'other', data: {} });
  sockets[0].recv({ type: 'event', seq: 2, node: '/finesse/api/User/1001', event: 'PUT', requestId, data: { loginId: '1001', state: 'READY' } });
  const ev = await p;
  assert.equal(ev.seq, 2);
});

test('awaitEvent finds an event that arrived before the HTTP answer naming its requestId', async () => {
  const { client, sockets, timers } = harness();
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  sockets[0].recv({ type: 'event', seq: 1, node: '/finesse/api/User/1001/Dialogs', event: 'PUT', requestId: 'early', data: { apiErrors: { apiError: [{ errorMessage: 'CF_INVALID_DESTINATION' }] } } });
  const ev = await client.awaitEvent('early', 5000);
  assert.equal(ev.seq, 1);
  const again = assert.rejects(client.awaitEvent('early', 5000), /no event for request early/, 'an early event is given once');
  await timers.advance(5000);
  await again;
});

test('awaitEvent times out when no event comes', async () => {
  const { client, timers } = harness();
  const p = client.awaitEvent('nope', 5000);
  const check = assert.rejects(p, /no event for request nope/);
  await timers.advance(5000);
  await check;
});

test('resubscribes supervisor nodes after every welcome', async () => {
  const { client, sockets, timers } = harness();
  await client.signIn({ loginId: '2001', password: 'demo' });
  client.connect();
  await tick();
  client.subscribe('/finesse/api/Team/10/Users');
  sockets[0].recv({ type: 'welcome', agent: '2001', seq: 0, resumed: false, heartbeat: 25 });
  sockets[0].drop(1006);
  await timers.advance(1000);
  await tick();
  sockets[1].recv({ type: 'welcome', agent: '2001', seq: 0, resumed: true, heartbeat: 25 });
  assert.ok(sockets[1].sent.some(m => m.type === 'subscribe' && m.node === '/finesse/api/Team/10/Users'));
});

test('reduceState follows Finesse collection rules', () => {
  const node = '/finesse/api/User/1001/Dialogs';
  let s = reduceState(node, [], { event: 'POST', data: { dialogs: [{ id: 'd1', state: 'ALERTING' }] } });
  assert.deepEqual(s.map(d => d.id), ['d1']);
  s = reduceState(node, s, { event: 'PUT', data: { id: 'd1', state: 'ACTIVE' } });
  assert.equal(s[0].state, 'ACTIVE');
  assert.equal(reduceState(node, s, { event: 'PUT', data: { apiErrors: [{ errorMessage: 'CF_X' }] } }), undefined);
  s = reduceState(node, s, { event: 'DELETE', data: { dialogs: [{ id: 'd1' }] } });
  assert.deepEqual(s, []);
  const team = { id: '10', users: [{ loginId: '1001', state: 'READY' }, { loginId: '1002', state: 'READY' }] };
  const t2 = reduceState('/finesse/api/Team/10/Users', team, { event: 'PUT', data: { loginId: '1002', state: 'TALKING' } });
  assert.equal(t2.users[1].state, 'TALKING');
  assert.equal(team.users[1].state, 'READY', 'the previous state is not modified');
});

test('link reports the relay WebSocket alone; upstream status does not touch it', async () => {
  const { client, sockets, timers } = harness();
  const links = [];
  client.onLink(s => links.push(s));
  await client.signIn({ loginId: '1001', password: 'demo' });
  client.connect();
  await tick();
  sockets[0].recv({ type: 'welcome', agent: '1001', seq: 1, resumed: false, heartbeat: 25, stream: 's' });
  sockets[0].recv({ type: 'status', seq: 2, upstream: 'reconnecting', side: 'A' });
  assert.equal(client.link, 'up', 'an upstream reconnect is not a relay reconnect');
  assert.equal(client.connection, 'reconnecting');
  sockets[0].recv({ type: 'status', seq: 3, upstream: 'up', side: 'B' });
  assert.equal(client.connection, 'up');
  sockets[0].drop(1006);
  assert.equal(client.link, 'reconnecting');
  await timers.advance(500); await tick();
  sockets[1].recv({ type: 'welcome', agent: '1001', seq: 3, resumed: true, heartbeat: 25, stream: 's' });
  assert.deepEqual(links, ['connecting', 'up', 'reconnecting', 'up']);
});

test('helpers for single-step transfer and the supervisor actions send Finesse bodies', async () => {
  const { client, calls } = harness();
  await client.signIn({ loginId: '2001', password: 'demo' });
  await client.singleStepTransfer('77', '52001', '51003');
  await client.silentMonitor('52001', '51002');
  await client.barge('52001', '51002', '99');
  await client.participantDrop('77', '51002');
  const bodies = calls.filter(c => c.url.includes('/api/finesse/')).map(c => [c.init.method, c.url.replace('http://relay/api/finesse/', ''), c.init.body]);
  assert.deepEqual(bodies[0], ['PUT', 'Dialog/77', '<Dialog><requestedAction>TRANSFER_SST</requestedAction><targetMediaAddress>52001</targetMediaAddress><toAddress>51003</toAddress></Dialog>']);
  assert.deepEqual(bodies[1], ['POST', 'User/1001/Dialogs', '<Dialog><requestedAction>SILENT_MONITOR</requestedAction><fromAddress>52001</fromAddress><toAddress>51002</toAddress></Dialog>']);
  assert.match(bodies[2][2], /<requestedAction>BARGE_CALL<\/requestedAction>.*<associatedDialogUri>\/finesse\/api\/Dialog\/99<\/associatedDialogUri>/);
  assert.deepEqual(bodies[3], ['PUT', 'Dialog/77', '<Dialog><requestedAction>PARTICIPANT_DROP</requestedAction><targetMediaAddress>51002</targetMediaAddress></Dialog>']);
});

test('reduceState: a reconciled event carries the whole state; Dialogs/Media folds like Dialogs', async () => {
  const { reduceState } = await import('../../client/relay-client.js');
  const full = [{ id: 'a' }, { id: 'b' }];
  const got = reduceState('/finesse/api/User/1001/Dialogs', [{ id: 'a' }], { event: 'PUT', reconciled: true, data: full });
  assert.deepStrictEqual(got, full);
  const chats = reduceState('/finesse/api/User/1001/Dialogs/Media', [{ id: 'c1' }], { event: 'POST', data: { dialogs: [{ id: 'c2' }] } });
  assert.deepStrictEqual(chats.map(d => d.id), ['c1', 'c2']);
});
