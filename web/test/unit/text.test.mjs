// Unit tests of the pages' pure parts: Finesse error codes as sentences,
// call kinds, labelled call variables, event-log lines, the upstream status
// banner logic and the client's team-row replacement and link state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainError, callKind, labelVariables, describeEvent, stateLabel } from '../../static/finesse-text.js';
import { Upstream } from '../../static/ui.js';
import { reduceState, parseLayout, RelayError } from '../../client/relay-client.js';

test('refused actions are explained in words and keep the raw code', () => {
  const cases = [
    [[{ errorType: 'Call Operation Failure', errorMessage: 'CF_INVALID_DESTINATION', errorData: '27' }], /cannot be dialled/, 'Call Operation Failure · CF_INVALID_DESTINATION · 27'],
    [[{ errorType: 'Call Operation Failure', errorMessage: 'CF_RESOURCE_BUSY', errorData: '36' }], /busy/, 'CF_RESOURCE_BUSY'],
    [[{ errorType: 'Device Busy', errorMessage: 'E_CTI_DEVICE_IN_USE', errorData: '10' }], /Another agent/, 'E_CTI_DEVICE_IN_USE'],
    [[{ errorType: 'Invalid State', errorMessage: 'invalid state change from READY to LOGOUT', errorData: 'LOGOUT' }], /current state.*READY to LOGOUT/, 'Invalid State'],
    [{ apiErrors: [{ errorType: 'Weird', errorMessage: 'X_NEW_CODE' }] }, /Finesse refused: X_NEW_CODE/, 'X_NEW_CODE'],
    [new RelayError(400, 'Invalid Input', 'Invalid Input: not a valid destination', '<ApiErrors><ApiError><ErrorType>Invalid Input</ErrorType><ErrorMessage>not a valid destination</ErrorMessage><ErrorData>toAddress</ErrorData></ApiError></ApiErrors>'), /refused a value/, 'toAddress'],
    [new RelayError(503, 'Service Unavailable', 'x', '<ApiErrors><ApiError><ErrorType>Service Unavailable</ErrorType><ErrorMessage>Finesse is OUT_OF_SERVICE</ErrorMessage><ErrorData>OUT_OF_SERVICE</ErrorData></ApiError></ApiErrors>'), /out of service/, 'OUT_OF_SERVICE'],
    [new RelayError(0, 'timeout', 'no event'), /did not confirm/, 'timeout'],
  ];
  for (const [err, text, code] of cases) {
    const x = explainError(err);
    assert.match(x.text, text, JSON.stringify(err));
    assert.ok(x.code.includes(code), `${x.code} lacks ${code}`);
  }
});

test('call kinds and the event log tell inbound, outbound and consult apart and label hold', () => {
  const d = (callType, from, to, myState) => ({ id: '1', fromAddress: from, toAddress: to, state: 'ACTIVE', mediaProperties: { callType }, participants: [{ mediaAddress: '51001', state: myState }, { mediaAddress: 'x', state: 'ACTIVE' }] });
  assert.equal(callKind(d('ACD_IN', '555', '51001'), '51001'), 'Inbound');
  assert.equal(callKind(d('OUT', '51001', '555'), '51001'), 'Outbound');
  assert.equal(callKind(d('CONSULT', '51001', '51002'), '51001'), 'Consult (outgoing)');
  assert.equal(callKind(d('SUPERVISOR_MONITOR', '52001', '51001'), '52001'), 'Silent monitor');
  const held = describeEvent({ node: '/finesse/api/User/1001/Dialogs', event: 'PUT', data: d('ACD_IN', '555', '51001', 'HELD') }, '51001');
  assert.equal(held.text, 'Inbound call from 555: on hold', 'the dialog is ACTIVE but my leg is HELD');
  const out = describeEvent({ node: '/finesse/api/User/1001/Dialogs', event: 'POST', data: { dialogs: [d('OUT', '51001', '5550000', 'INITIATING')] } }, '51001');
  assert.equal(out.text, 'New call: outbound to 5550000');
  const cons = describeEvent({ node: '/finesse/api/User/1001/Dialogs', event: 'POST', data: { dialogs: [d('CONSULT', '51001', '51002', 'INITIATED')] } }, '51001');
  assert.equal(cons.text, 'New call: consult (outgoing) to 51002');
  const st = describeEvent({ node: '/finesse/api/User/1001', event: 'PUT', data: { loginId: '1001', state: 'TALKING', pendingState: 'NOT_READY' } });
  assert.equal(st.text, '1001 → Talking, then Not ready');
  assert.notEqual(stateLabel('RESERVED'), stateLabel('NOT_READY'));
  const si = describeEvent({ node: '/finesse/api/SystemInfo', event: 'PUT', data: { status: 'OUT_OF_SERVICE', statusReason: 'CTI down', xmppDomain: 'x' } });
  assert.deepEqual(si, { text: 'Finesse reports OUT_OF_SERVICE (CTI down)', err: true });
});

test('call variables are labelled by the layout, with raw names as fallback', () => {
  const layout = parseLayout(`<MediaPropertiesLayouts><MediaPropertiesLayout><id>1</id><header><entry><displayName>Account</displayName><mediaProperty>callVariable1</mediaProperty></entry></header>
    <column><entry><displayName>Reason</displayName><mediaProperty>callVariable2</mediaProperty></entry><entry><displayName>Queue</displayName><mediaProperty>queueName</mediaProperty></entry></column></MediaPropertiesLayout></MediaPropertiesLayouts>`);
  assert.deepEqual(layout.map(e => [e.label, e.name, e.header]), [['Account', 'callVariable1', true], ['Reason', 'callVariable2', false], ['Queue', 'queueName', false]]);
  const d = { mediaProperties: { queueName: 'Sales', callVariables: [{ name: 'callVariable1', value: 'ACC-1' }, { name: 'callVariable2', value: '' }, { name: 'user.Tier', value: 'Gold' }] } };
  assert.deepEqual(labelVariables(d, layout).map(v => [v.label, v.value]), [['Account', 'ACC-1'], ['Queue', 'Sales'], ['user.Tier', 'Gold']]);
  assert.deepEqual(labelVariables(d, []).map(v => v.label), ['callVariable1', 'user.Tier']);
});

test('a team member update replaces the row: a reason that disappears is cleared ("Ready — Lunch")', () => {
  const node = '/finesse/api/Team/10/Users';
  const team = { id: '10', users: [{ loginId: '1002', state: 'NOT_READY', reasonCodeId: '12', reasonCode: { id: '12', label: 'Lunch' }, pendingState: '' }] };
  const next = reduceState(node, team, { event: 'PUT', data: { loginId: '1002', state: 'READY', reasonCodeId: '-1', pendingState: '' } });
  assert.equal(next.users[0].state, 'READY');
  assert.equal(next.users[0].reasonCode, undefined, 'the old reasonCode must not survive');
  assert.equal(team.users[0].reasonCode.label, 'Lunch', 'the previous state is not modified');
  const whole = reduceState(node, team, { event: 'PUT', data: { id: '10', users: [{ loginId: '1003', state: 'READY' }] } });
  assert.deepEqual(whole.users.map(u => u.loginId), ['1003'], 'a whole Team replaces the team');
});

test('upstream status: one side down, both sides down, live at once on up, the side after failover', () => {
  const u = new Upstream();
  assert.equal(u.update({ upstream: 'up', side: 'A' }).state, 'up');
  let v = u.update({ upstream: 'out_of_service', side: 'A' });
  assert.equal(v.actionsOK, false);
  assert.match(v.banner, /side A is out of service; the relay is trying side B/);
  v = u.update({ upstream: 'failover', side: 'B' });
  assert.match(v.banner, /failing over to side B/);
  v = u.update({ upstream: 'out_of_service', side: 'B' });
  assert.match(v.banner, /both sides/);
  assert.match(v.banner, /Calls already on your phone continue/);
  assert.equal(u.update({ upstream: 'failover', side: 'A' }).state, 'out_of_service', 'stays "both down" while the relay alternates');
  v = u.update({ upstream: 'up', side: 'B' });
  assert.equal(v.state, 'up');
  assert.equal(v.actionsOK, true);
  assert.equal(v.indicator, 'Finesse side B: live (after failover)');
  assert.equal(u.update({ upstream: 'reconnecting', side: 'B' }).banner.includes('side B'), true);
});
