package xmpp

import (
	"errors"
	"fmt"
)

// Reason says why a session ended (or why Dial failed to start one). The
// session manager decides from it whether and when to reconnect.
type Reason string

// The reasons a session ends.
const (
	// ReasonAuth: SASL refused the credentials (not-authorized,
	// account-disabled, credentials-expired, ...). Never retry with the same
	// password or token.
	ReasonAuth Reason = "auth"
	// ReasonConflict: the server replaced this session with another one that
	// bound the same resource (stream error <conflict/>), or refused to bind
	// the resource because it is in use.
	ReasonConflict Reason = "conflict"
	// ReasonStream: the stream failed: a stream error other than conflict,
	// end of stream, a network error, malformed XML, a failed negotiation.
	ReasonStream Reason = "stream"
	// ReasonPingTimeout: PingMisses pings in a row were not answered.
	ReasonPingTimeout Reason = "ping_timeout"
	// ReasonClosed: Close was called.
	ReasonClosed Reason = "closed"
	// ReasonContext: the context given to Run (or Dial) was done.
	ReasonContext Reason = "context"
	// ReasonLimit: the server sent a stanza larger than MaxStanzaSize or
	// nested deeper than MaxDepth.
	ReasonLimit Reason = "limit"
)

// Sentinel errors, one per Reason. A *SessionError matches the sentinel of
// its Reason with errors.Is, and also whatever it wraps (for example
// context.Canceled for ReasonContext).
var (
	ErrAuth        = errors.New("xmpp: authentication refused")
	ErrConflict    = errors.New("xmpp: session replaced (resource conflict)")
	ErrStream      = errors.New("xmpp: stream failed")
	ErrPingTimeout = errors.New("xmpp: pings unanswered")
	ErrClosed      = errors.New("xmpp: client closed")
	ErrContext     = errors.New("xmpp: context done")
	ErrLimit       = errors.New("xmpp: input limit exceeded")
)

// Errors returned by Dial before any connection is made.
var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("xmpp: invalid config")
	// ErrInsecure is returned (wrapped) when the configured link would carry
	// the password in clear: SASL PLAIN is only sent over TLS (or over plain
	// ws/http on loopback with Config.AllowInsecure, for tests).
	ErrInsecure = errors.New("xmpp: refusing to send credentials over an insecure link")
)

// SessionError says why a session ended (from Run) or could not start
// (from Dial, for authentication and conflict failures and for failures
// after the connection was made).
type SessionError struct {
	Reason Reason
	Err    error // the underlying cause; may be nil
}

// Error implements error.
func (e *SessionError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("xmpp: session ended (%s)", e.Reason)
	}
	return fmt.Sprintf("xmpp: session ended (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the underlying cause.
func (e *SessionError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel error of e's Reason.
func (e *SessionError) Is(target error) bool {
	s := sentinel(e.Reason)
	return s != nil && target == s
}

func sentinel(r Reason) error {
	switch r {
	case ReasonAuth:
		return ErrAuth
	case ReasonConflict:
		return ErrConflict
	case ReasonStream:
		return ErrStream
	case ReasonPingTimeout:
		return ErrPingTimeout
	case ReasonClosed:
		return ErrClosed
	case ReasonContext:
		return ErrContext
	case ReasonLimit:
		return ErrLimit
	}
	return nil
}

// saslError is a <failure/> from the server during SASL.
type saslError struct {
	Condition string // e.g. "not-authorized"
	Text      string // the server's <text>, truncated
}

func (e *saslError) Error() string {
	if e.Text == "" {
		return "xmpp: sasl failure: " + e.Condition
	}
	return fmt.Sprintf("xmpp: sasl failure: %s (%s)", e.Condition, e.Text)
}

// temporary reports whether the failure says nothing about the credentials
// (RFC 6120 temporary-auth-failure, or aborted).
func (e *saslError) temporary() bool {
	return e.Condition == "temporary-auth-failure" || e.Condition == "aborted"
}
