// A small consumer of the typed client, type-checked with tsc --noEmit
// (scripts/client-types-test.sh). The @ts-expect-error lines must stay
// errors: they prove the declarations are precise, not `any`.
import {
  RelayClient, RelayError, CloseCodes, backoff, xmlEscape, parseList, apiErrors, reduceState,
  type ServerMessage, type ClientMessage, type ConnectionState, type SessionResponse, type EventMessage,
} from 'finesse-relay-client';

export async function agentDesktop(): Promise<void> {
  const relay = new RelayClient({ baseURL: 'https://relay.example.com:1125' });
  const s: SessionResponse = await relay.signIn({ loginId: '1001', password: 'demo' });
  const roles: string[] = s.roles;
  const expiresIn: number = s.ticketExpiresIn;
  void roles; void expiresIn;
  await relay.signIn({ loginId: '1001', authToken: 'token' }, { bearer: true });
  // @ts-expect-error a password sign-in needs the loginId
  await relay.signIn({ password: 'demo' });

  relay
    .onWelcome(w => { const stream: string = w.stream; const resumed: boolean = w.resumed; void stream; void resumed; })
    .onState((node, data) => { console.log(node, data); })
    .onEvent(ev => {
      const verb: 'PUT' | 'POST' | 'DELETE' = ev.event;
      if (apiErrors(ev.data)) console.warn('refused', ev.requestId, verb);
    })
    .onStatus(st => { const side: 'A' | 'B' | '' = st.side; console.log(st.upstream, side); })
    .onConnection((c: ConnectionState) => { if (c === 'expired' || c === 'signed_out') location.assign('/login'); })
    .onError((e: RelayError) => { console.error(e.status, e.code); });
  relay.connect();

  const { requestId } = await relay.setState('NOT_READY', '12');
  const outcome: EventMessage = await relay.awaitEvent(requestId, 5000);
  void outcome;
  await relay.login('51001');
  await relay.makeCall('51001', '5551234567');
  await relay.sendDtmf('dlg1', '51001', '1234#');
  await relay.updateCallData('dlg1', { wrapUpReason: 'Sales', callVariables: { callVariable1: 'x' } });
  const reasons = await relay.reasonCodes('NOT_READY');
  const label: string | undefined = reasons[0]?.label;
  void label;
  // @ts-expect-error Finesse calls take an HTTP method the proxy allows
  await relay.finesse('PATCH', 'User/1001');
  relay.subscribe('/finesse/api/Team/10/Users');
  relay.disconnect();
  await relay.signOut();
}

/** A hand-written client over the protocol types (README, "A minimal client"). */
export function handle(raw: string, send: (m: ClientMessage) => void): number | null {
  const m = JSON.parse(raw) as ServerMessage;
  switch (m.type) {
    case 'welcome':
      send({ type: 'ping', id: 'p1' });
      return m.seq;
    case 'state':
    case 'event':
    case 'status':
      return m.seq;
    case 'reply':
      return null;
    case 'error':
      // @ts-expect-error error codes are a closed set
      if (m.code === 'nope') return null;
      return null;
  }
}

export function misc(): void {
  const close: number = CloseCodes.SESSION_EXPIRED;
  // @ts-expect-error CloseCodes is read-only
  CloseCodes.NORMAL = 1;
  const wait: number = backoff(3, { base: 500, max: 15000 });
  const xml: string = xmlEscape('<a & b>');
  const items = parseList('<x><id>1</id></x>', 'x', ['id', 'label'] as const);
  const id: string | undefined = items[0]?.id;
  const next = reduceState('/finesse/api/User/1001/Dialogs', [], { event: 'DELETE', data: { id: 'd1' } });
  // @ts-expect-error resume needs since
  const bad: ClientMessage = { type: 'resume' };
  void close; void wait; void xml; void id; void next; void bad;
}
