package ids

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrSignInAgain means IdS no longer accepts the grant (invalid_grant:
	// the refresh token expired, was revoked or rotated, or the code is
	// bad): the user must sign in again.
	ErrSignInAgain = errors.New("ids: sign in again")
	// ErrUnavailable means no IdS node could be reached or every node
	// answered 5xx. Retryable.
	ErrUnavailable = errors.New("ids: identity service unavailable")
	// ErrClientRejected means IdS refused the client credentials
	// (invalid_client): check client_id and client_secret.
	ErrClientRejected = errors.New("ids: client credentials rejected")
	// ErrStateMismatch means the sign-in callback's state does not match
	// the browser's state cookie, is missing, expired or already used.
	ErrStateMismatch = errors.New("ids: sign-in state mismatch")
	// ErrNoPublicKey means no IdS node offers the token-signing public key
	// (IdS before 12.6(2), or unreachable): verify the token another way,
	// e.g. by asking Finesse.
	ErrNoPublicKey = errors.New("ids: no token public key available")
	// ErrTokenExpired means the token's lifetime has passed.
	ErrTokenExpired = errors.New("ids: token expired")
	// ErrTokenInvalid means the token is malformed, not signed by IdS with
	// RS256, or not an access token.
	ErrTokenInvalid = errors.New("ids: token invalid")
)

// RequestError describes one failed call to one IdS node.
type RequestError struct {
	// Node is the IdS base URL that was called.
	Node string
	// Op names the call: "code exchange", "token refresh", "public key".
	Op string
	// StatusCode is the HTTP status, 0 when no answer arrived.
	StatusCode int
	// Code and Description are RFC 6749's error and error_description
	// (sanitized and shortened).
	Code, Description string
	// Kind is the sentinel this failure maps to (ErrSignInAgain,
	// ErrUnavailable, ErrClientRejected) or nil.
	Kind error
	// Err is the underlying error: an *oauth2.RetrieveError or a transport
	// error.
	Err error
}

// Error says which node answered what, without tokens or secrets.
func (e *RequestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ids: %s at %s: ", e.Op, e.Node)
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		if e.Description != "" {
			b.WriteString(" (" + e.Description + ")")
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	switch e.Kind {
	case ErrClientRejected:
		b.WriteString(": check client_id and client_secret against the client registered in IdS admin (Clients)")
	case ErrSignInAgain:
		b.WriteString(": sign in again")
	}
	return b.String()
}

// Unwrap exposes Kind and Err to errors.Is and errors.As.
func (e *RequestError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// AuthorizeError is an error that IdS returned to the callback
// (error=…&error_description=…, RFC 6749 §4.1.2.1), or a callback that
// carried no usable code.
type AuthorizeError struct {
	Code, Description string
}

// Error describes the refusal.
func (e *AuthorizeError) Error() string {
	s := "ids: sign-in refused by IdS: " + e.Code
	if e.Description != "" {
		s += " (" + e.Description + ")"
	}
	return s
}

// nodeErrors joins the failures of several nodes on one line.
type nodeErrors []error

func (n nodeErrors) Error() string {
	msgs := make([]string, len(n))
	for i, e := range n {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (n nodeErrors) Unwrap() []error { return n }

// sanitize makes text from the network safe to show and log: printable
// runes only, at most max bytes.
func sanitize(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
