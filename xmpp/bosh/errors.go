package bosh

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Errors returned by this package wrap one of them (or are a
// *TerminateError), so callers branch with errors.Is and errors.As.
var (
	// ErrConfig reports an unusable Config (empty URL or domain, a plain
	// http URL to a host that is not loopback, …).
	ErrConfig = errors.New("bosh: invalid config")

	// ErrProtocol reports input that breaks XEP-0124/0206: a malformed
	// response body, a body without sid, a write that is not an XMPP stream.
	ErrProtocol = errors.New("bosh: protocol error")

	// ErrBodyTooLarge reports a response body (or a single element written by
	// the client) larger than Config.MaxBodySize.
	ErrBodyTooLarge = errors.New("bosh: body too large")

	// ErrNetwork reports that a request kept failing at the network level
	// (no HTTP answer, or 502/503/504) after its retransmissions.
	ErrNetwork = errors.New("bosh: connection manager unreachable")

	// ErrStreamClosed reports a Write after the client ended its stream
	// (wrote </stream:stream>).
	ErrStreamClosed = errors.New("bosh: output stream closed")
)

// Terminal binding conditions of XEP-0124 §17.2 and XEP-0206 that a
// connection manager may send with type='terminate'.
const (
	ConditionBadRequest             = "bad-request"
	ConditionHostGone               = "host-gone"
	ConditionHostUnknown            = "host-unknown"
	ConditionImproperAddressing     = "improper-addressing"
	ConditionInternalServerError    = "internal-server-error"
	ConditionItemNotFound           = "item-not-found"
	ConditionOtherRequest           = "other-request"
	ConditionPolicyViolation        = "policy-violation"
	ConditionRemoteConnectionFailed = "remote-connection-failed"
	ConditionRemoteStreamError      = "remote-stream-error"
	ConditionSeeOtherURI            = "see-other-uri"
	ConditionSystemShutdown         = "system-shutdown"
	ConditionUndefinedCondition     = "undefined-condition"
)

// TerminateError reports that the connection manager ended the session with
// a terminal binding condition (type='terminate' condition='…'), or answered
// with an HTTP error status, which XEP-0124 §17.1 maps to a condition
// (400 bad-request, 403 policy-violation, 404 item-not-found; any other
// status is undefined-condition).
type TerminateError struct {
	// Condition is the terminal binding condition, e.g. "item-not-found".
	Condition string
	// HTTPStatus is the HTTP status code when the condition came from an HTTP
	// error status, else 0.
	HTTPStatus int
}

// Error implements error.
func (e *TerminateError) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("bosh: session terminated: %s (HTTP %d)", e.Condition, e.HTTPStatus)
	}
	return "bosh: session terminated: " + e.Condition
}

// conditionForStatus maps an HTTP error status to a terminal condition.
func conditionForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return ConditionBadRequest
	case http.StatusForbidden:
		return ConditionPolicyViolation
	case http.StatusNotFound:
		return ConditionItemNotFound
	default:
		return ConditionUndefinedCondition
	}
}

// retryable reports whether an HTTP status is worth a retransmission of the
// same request: a proxy in front of the connection manager that is briefly
// unavailable.
func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}
