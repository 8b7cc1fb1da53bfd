package gadget

import "errors"

// Errors returned by Tickets.Redeem. Callers branch on them with errors.Is;
// the Gateway answers every one of them with HTTP 401 invalid_ticket.
var (
	// ErrTicketUnknown: the ticket was never issued, or it expired long
	// enough ago to have been forgotten.
	ErrTicketUnknown = errors.New("gadget: ticket unknown")
	// ErrTicketExpired: the ticket was issued but its time to live is over.
	ErrTicketExpired = errors.New("gadget: ticket expired")
	// ErrTicketUsed: the ticket was already redeemed (tickets are single use).
	ErrTicketUsed = errors.New("gadget: ticket already used")
	// ErrTooManyTickets: Tickets.Issue refused a ticket because the relay
	// session already has TicketsConfig.MaxPerSession outstanding ones
	// (callers answer 429).
	ErrTooManyTickets = errors.New("gadget: too many outstanding tickets for this relay session")
)

// Errors of the Stream and Gateway lifecycles.
var (
	// ErrStreamEnded: the Stream was ended (End) and accepts no connection.
	ErrStreamEnded = errors.New("gadget: stream ended")
	// ErrGatewayClosed: Shutdown was called; no new connection is accepted.
	ErrGatewayClosed = errors.New("gadget: gateway shut down")
)

// WebSocket close codes the relay sends. The 4xxx codes are the relay's own
// (RFC 6455 leaves 4000-4999 to applications). Codes marked "resume" mean:
// reconnect (with backoff) and resume from the last seq seen; codes marked
// "stop" mean: do not reconnect, sign in again.
const (
	// CloseNormal (1000): the client asked to close.
	CloseNormal = 1000
	// CloseGoingAway (1001): the relay is shutting down. Resume, with backoff.
	CloseGoingAway = 1001
	// CloseInvalidPayload (1007): a text frame was not valid UTF-8
	// (RFC 6455 section 8.1). Fix the client; resume.
	CloseInvalidPayload = 1007
	// CloseMessageTooBig (1009): an inbound message exceeded MaxMessageSize. Resume.
	CloseMessageTooBig = 1009
	// CloseInternal (1011): the relay failed. Resume, with backoff.
	CloseInternal = 1011
	// CloseQueueOverflow (4000): the connection's send queue overflowed
	// (slow consumer). Resume: the ring usually still holds what was missed.
	CloseQueueOverflow = 4000
	// CloseHeartbeatTimeout (4001): nothing was received for 2.5×heartbeat. Resume.
	CloseHeartbeatTimeout = 4001
	// CloseSignedOut (4100): the agent signed out. Stop; sign in again.
	CloseSignedOut = 4100
	// CloseSessionExpired (4101): the upstream credential could not be
	// refreshed. Stop; sign in again.
	CloseSessionExpired = 4101
	// CloseShutdown (4102): the relay ended this agent session. Reconnect
	// after backoff with a NEW session (fresh ticket, no resume).
	CloseShutdown = 4102
	// ClosePolicyViolation (4103): too many bad messages. Stop.
	ClosePolicyViolation = 4103
)

// Close reasons sent with the relay's own close codes.
const (
	reasonGoingAway       = "going_away"
	reasonTooLarge        = "too_large"
	reasonInvalidPayload  = "invalid_payload"
	reasonInternal        = "internal"
	reasonQueueOverflow   = "queue_overflow"
	reasonHeartbeat       = "heartbeat_timeout"
	reasonSignedOut       = "signed_out"
	reasonSessionExpired  = "session_expired"
	reasonShutdown        = "shutdown"
	reasonPolicyViolation = "policy_violation"
)

// Error codes of `error` messages sent to the browser.
const (
	// CodeBadRequest: not JSON, not a text frame, or a missing/mistyped field.
	CodeBadRequest = "bad_request"
	// CodeUnknownType: the command's type is not one the relay knows.
	CodeUnknownType = "unknown_type"
	// CodeForbidden: the node is not one this session may subscribe to.
	CodeForbidden = "forbidden"
	// CodeTooLarge: the message exceeded MaxMessageSize; close 1009 follows.
	CodeTooLarge = "too_large"
	// CodeRateLimited: commands arrived faster than the relay accepts them.
	CodeRateLimited = "rate_limited"
	// CodeInternal: the relay failed to process the command.
	CodeInternal = "internal"
)

// End reasons accepted by Stream.End, and the close code each one maps to.
const (
	endSignedOut      = "signed_out"
	endSessionExpired = "session_expired"
	endShutdown       = "shutdown"
)

// endClose maps an End reason to its close code and reason. Unknown reasons
// are treated as "shutdown" (the safe choice: clients start a new session).
func endClose(reason string) (int, string) {
	switch reason {
	case endSignedOut:
		return CloseSignedOut, reasonSignedOut
	case endSessionExpired:
		return CloseSessionExpired, reasonSessionExpired
	default:
		return CloseShutdown, reasonShutdown
	}
}
