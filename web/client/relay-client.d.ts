// Type declarations for relay-client.js, the Finesse Relay browser client.
// The wire types follow README.md, "The browser protocol (WebSocket)" and
// "The HTTP API"; the class follows relay-client.js beside it.

/** Close codes of the relay's WebSocket (README, "Close codes"). */
export declare const CloseCodes: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  TOO_BIG: 1009;
  INTERNAL: 1011;
  QUEUE_OVERFLOW: 4000;
  HEARTBEAT_TIMEOUT: 4001;
  SIGNED_OUT: 4100;
  SESSION_EXPIRED: 4101;
  SHUTDOWN: 4102;
  POLICY_VIOLATION: 4103;
}>;
export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes];

/** Health of the agent's upstream Finesse session (status.upstream). */
export type UpstreamState = 'connecting' | 'up' | 'reconnecting' | 'failover' | 'out_of_service' | 'signed_out';

/** The client's own connection state: the upstream states plus expired (4101) and offline. */
export type ConnectionState = UpstreamState | 'expired' | 'offline';

/** A Finesse side. */
export type Side = 'A' | 'B' | '';

/** The relay's error codes in `error` messages. */
export type ProtocolErrorCode = 'bad_request' | 'unknown_type' | 'forbidden' | 'too_large' | 'rate_limited' | 'internal';

// ---- server → browser ----

/** First message of a connection, and the answer to `resume`. */
export interface WelcomeMessage {
  type: 'welcome';
  agent: string;
  roles: string[];
  /** Position this connection is caught up to once the following snapshot or replay is processed; -1 before anything was sent. */
  seq: number;
  /** true: a replay after `since` follows (keep your state); false: a fresh snapshot follows (discard it). */
  resumed: boolean;
  /** Heartbeat period in seconds (may be fractional). */
  heartbeat: number;
  /** The agent Session's stream id; send it back with `since`. */
  stream: string;
}

/** The full current state of a node (`data: null`: the node has no state any more). */
export interface StateMessage<T = unknown> {
  type: 'state';
  seq: number;
  node: string;
  data: T | null;
}

/** One Finesse notification. */
export interface EventMessage<T = unknown> {
  type: 'event';
  seq: number;
  node: string;
  event: 'PUT' | 'POST' | 'DELETE';
  /** The Finesse source node (may be ""). */
  source: string;
  /** The requestId of the REST call that caused it ("" when none). */
  requestId: string;
  /**
   * true when the relay derived this event from a snapshot because the
   * request's own notification was lost in a reconnect or failover
   * ("Reconciliation after a gap"): data is then the node's whole state.
   */
  reconciled?: boolean;
  /** The notification's object as JSON; may be an apiErrors object, or null. */
  data: T | ApiErrorsData | null;
}

/** Health of the upstream Finesse session. */
export interface StatusMessage {
  type: 'status';
  seq: number;
  upstream: UpstreamState;
  side: Side;
  host: string;
}

/** Answer to a command (`ok` only for subscribe/unsubscribe; no `id` when none was sent). */
export interface ReplyMessage {
  type: 'reply';
  id?: string;
  ok?: boolean;
}

/** A refused command. */
export interface ErrorMessage {
  type: 'error';
  code: ProtocolErrorCode;
  message: string;
  id?: string;
}

/** Every message the relay sends (unknown fields may appear and must be ignored). */
export type ServerMessage = WelcomeMessage | StateMessage | EventMessage | StatusMessage | ReplyMessage | ErrorMessage;

// ---- browser → server ----

export interface PingCommand { type: 'ping'; id?: string }
export interface SubscribeCommand { type: 'subscribe'; id?: string; node: string }
export interface UnsubscribeCommand { type: 'unsubscribe'; id?: string; node: string }
export interface ResumeCommand { type: 'resume'; since: number; stream?: string }
/** Every command a browser may send (`id` ≤ 128 bytes, `node` ≤ 512, `stream` ≤ 64, `since` ≥ -1). */
export type ClientMessage = PingCommand | SubscribeCommand | UnsubscribeCommand | ResumeCommand;

// ---- HTTP API ----

/** 201 answer of POST /api/v1/sessions and POST /api/v1/tickets. */
export interface SessionResponse {
  loginId: string;
  roles: string[];
  /** Relay session token (use as a bearer only in gadgets). */
  session: string;
  /** Single-use WebSocket ticket. */
  ticket: string;
  /** Ticket lifetime in seconds. */
  ticketExpiresIn: number;
}

/** Body of every relay error: {"error": {"code", "message"}}. */
export interface RelayErrorBody { error: { code: string; message: string } }

/** Credentials for signIn: non-SSO password, or a gadget's SSO token. */
export type Credentials = { loginId: string; password: string } | { loginId: string; authToken: string };

/** An apiErrors payload carried by an event. */
export interface ApiErrorsData {
  apiErrors?: ApiError[];
  errors?: ApiError[];
}
export interface ApiError {
  errorType?: string;
  errorMessage?: string;
  errorData?: string;
  [field: string]: unknown;
}

/** Answer of an allow-listed Finesse call through the relay. */
export interface FinesseResponse {
  status: number;
  /** Finesse requestId: the outcome of a 202 arrives as the event carrying it. */
  requestId: string;
  /** Finesse's XML body. */
  text: string;
}

/** A reason code (NOT_READY, LOGOUT). */
export interface ReasonCode { id?: string; label?: string; code?: string; category?: string }
/** A wrap-up reason. */
export interface WrapUpReason { label?: string; id?: string }

/** Error from a relay or Finesse call, with the HTTP status (0: not HTTP) and the body. */
export declare class RelayError extends Error {
  constructor(status: number, code?: string, message?: string, body?: string);
  status: number;
  code: string | undefined;
  body: string | undefined;
}

/** Options of RelayClient; all optional. */
export interface RelayClientOptions {
  /** Relay origin ('' = same origin). */
  baseURL?: string;
  /** fetch implementation (tests). */
  fetch?: typeof fetch;
  /** WebSocket implementation (tests). */
  WebSocket?: { new (url: string): WebSocket };
  /** Timer functions (tests). */
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout };
  /** Math.random replacement (tests). */
  random?: () => number;
}

export declare class RelayClient {
  constructor(opts?: RelayClientOptions);
  baseURL: string;
  /** Bearer token (gadgets); null = cookie. */
  session: string | null;
  loginId: string | null;
  roles: string[];
  ticket: string | null;
  /** Last seq seen: the resume point. */
  lastSeq: number | null;
  /** welcome.stream: resume only within the same agent session. */
  stream: string | null;
  /** node → latest data. */
  states: Map<string, unknown>;
  /** Last status message. */
  status: StatusMessage | null;
  connection: ConnectionState;
  /** Heartbeat period in seconds (from welcome). */
  heartbeat: number;

  /** Snapshot and fresh state per node. */
  onState(fn: (node: string, data: unknown, message: StateMessage | EventMessage) => void): this;
  onEvent(fn: (event: EventMessage) => void): this;
  onStatus(fn: (status: StatusMessage) => void): this;
  onConnection(fn: (state: ConnectionState) => void): this;
  onError(fn: (error: RelayError) => void): this;
  onWelcome(fn: (welcome: WelcomeMessage) => void): this;

  /**
   * Signs in: {loginId, password} (non-SSO), {loginId, authToken} (a gadget's
   * SSO token), or nothing (the relay cookie after /login). bearer: keep the
   * session token and send it as a bearer (gadgets).
   */
  signIn(creds?: Credentials | null, options?: { bearer?: boolean }): Promise<SessionResponse>;
  /** Resumes an existing sign-in with a fresh ticket. */
  resumeSession(): Promise<SessionResponse>;
  /** Hands a refreshed Finesse SSO token to the relay (gadgets). */
  refreshToken(authToken: string): Promise<void>;
  /** Signs this browser out of the relay. */
  signOut(): Promise<void>;

  /** Opens the WebSocket; reconnects with backoff and resumes until disconnect() or a terminal close. */
  connect(): void;
  disconnect(): void;
  /** Asks for a Team or Queue node's events (supervisors); kept across reconnects. */
  subscribe(node: string): void;
  unsubscribe(node: string): void;
  /** Resolves with the event carrying requestId (the 202-then-event pattern); rejects with code 'timeout'. */
  awaitEvent(requestId: string, timeoutMs?: number): Promise<EventMessage>;

  /** Any allow-listed Finesse call through the relay. */
  finesse(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, xml?: string): Promise<FinesseResponse>;
  setState(state: string, reasonCodeId?: string): Promise<FinesseResponse>;
  /** Supervisor: changes a team member's state. */
  setAgentState(loginId: string, state: string): Promise<FinesseResponse>;
  login(extension: string): Promise<FinesseResponse>;
  logout(reasonCodeId?: string): Promise<FinesseResponse>;
  makeCall(fromExtension: string, to: string): Promise<FinesseResponse>;
  answer(dialogId: string, ext: string): Promise<FinesseResponse>;
  hold(dialogId: string, ext: string): Promise<FinesseResponse>;
  retrieve(dialogId: string, ext: string): Promise<FinesseResponse>;
  drop(dialogId: string, ext: string): Promise<FinesseResponse>;
  consult(dialogId: string, ext: string, to: string): Promise<FinesseResponse>;
  transfer(dialogId: string, ext: string): Promise<FinesseResponse>;
  conference(dialogId: string, ext: string): Promise<FinesseResponse>;
  sendDtmf(dialogId: string, ext: string, digits: string): Promise<FinesseResponse>;
  updateCallData(dialogId: string, data?: { wrapUpReason?: string; callVariables?: Record<string, string> }): Promise<FinesseResponse>;
  /** Reason codes of a category (NOT_READY, LOGOUT). */
  reasonCodes(category: string): Promise<ReasonCode[]>;
  wrapUpReasons(): Promise<WrapUpReason[]>;
}

/** Escapes text for an XML body. */
export declare function xmlEscape(s: unknown): string;
/** Backoff delay (ms) for the n-th consecutive failed attempt, with ±25 % jitter. */
export declare function backoff(n: number, opts?: { base?: number; max?: number; random?: () => number }): number;
/** Extracts simple child fields of repeated elements from Finesse XML. */
export declare function parseList<F extends string>(xml: string, element: string, fields: readonly F[]): Array<Partial<Record<F, string>>>;
/** Finesse apiErrors carried by an event's data, or null. */
export declare function apiErrors(data: unknown): ApiError[] | null;
/** The node's state after an event (undefined: unchanged), by Finesse's collection rules. */
export declare function reduceState(node: string, cur: unknown, ev: Pick<EventMessage, 'event' | 'data'>): unknown;
