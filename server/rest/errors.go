package rest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"finesse-relay/xmpp/finesse"
)

// Sentinel errors. Callers branch with errors.Is; *APIError matches the
// status-based ones (ErrUnauthorized, ErrForbidden, ErrNotFound,
// ErrOutOfService) by its Status.
var (
	// ErrUnauthorized: Finesse answered 401 (credentials refused, or the
	// user may not act on that object). ErrCredentialRefused wraps it too.
	ErrUnauthorized = errors.New("rest: unauthorized")
	// ErrForbidden: Finesse answered 403.
	ErrForbidden = errors.New("rest: forbidden")
	// ErrNotFound: Finesse answered 404.
	ErrNotFound = errors.New("rest: not found")
	// ErrOutOfService: Finesse answered 503; the side is OUT_OF_SERVICE
	// or PARTIAL_SERVICE and the session should check the other side.
	ErrOutOfService = errors.New("rest: finesse out of service")
	// ErrUnreachable: no answer from Finesse (connection refused, TLS
	// failure, reset, or timeout). A timeout also wraps
	// context.DeadlineExceeded.
	ErrUnreachable = errors.New("rest: finesse unreachable")
	// ErrCredentialRefused: the client did not send the request because
	// Finesse already refused this exact Basic credential; sending it again
	// would count towards Finesse's account lockout. It wraps
	// ErrUnauthorized.
	ErrCredentialRefused = fmt.Errorf("%w: credential already refused by finesse, not sent again", ErrUnauthorized)
	// ErrCredentials: the Credentials could not produce an Authorization
	// value (for example the token could not be refreshed). The
	// Credentials' own error is wrapped as well.
	ErrCredentials = errors.New("rest: no credentials")
	// ErrRedirect: Finesse answered with a redirect, which the client never
	// follows; the configured base URL (usually its port) is wrong.
	ErrRedirect = errors.New("rest: finesse redirected")
	// ErrResponseTooLarge: the response body exceeded
	// Config.MaxResponseSize.
	ErrResponseTooLarge = errors.New("rest: response too large")
	// ErrInvalidRequest: the request cannot be sent as given (a path with
	// "..", an encoded slash or an empty segment, an id with characters
	// outside the allowed set, no side configured).
	ErrInvalidRequest = errors.New("rest: invalid request")
	// ErrMalformedResponse: a 2xx answer whose body is not the object
	// asked for. It also wraps the finesse package's error.
	ErrMalformedResponse = errors.New("rest: malformed response")
)

// APIError is a non-2xx answer from Finesse to a typed call.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Errors holds the ApiErrors report, in either form Finesse uses
	// (<ApiErrors><ApiError><ErrorType> or lower case); nil if the body
	// was not one.
	Errors []finesse.APIError
	// Text is a short, printable summary of a body that is not an ApiErrors
	// report: the title of a Tomcat HTML error page, the start of a plain
	// text body. Empty when Errors is set or the body was empty.
	Text string
	// Body is the response body as received (bounded by
	// Config.MaxResponseSize).
	Body []byte
	// RequestID is the requestId of the call.
	RequestID string
}

// Error mentions the status and the first error's type and message, or
// the text summary.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rest: finesse answered %d %s", e.Status, http.StatusText(e.Status))
	switch {
	case len(e.Errors) > 0:
		x := e.Errors[0]
		b.WriteString(": ")
		if x.ErrorType != "" {
			b.WriteString(x.ErrorType)
			if x.ErrorMessage != "" {
				b.WriteString(": ")
			}
		}
		b.WriteString(x.ErrorMessage)
		if x.ErrorData != "" {
			fmt.Fprintf(&b, " (%s)", x.ErrorData)
		}
		if n := len(e.Errors) - 1; n > 0 {
			fmt.Fprintf(&b, " and %d more", n)
		}
	case e.Text != "":
		b.WriteString(": ")
		b.WriteString(e.Text)
	}
	return b.String()
}

// Is matches the status-based sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrOutOfService:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// newAPIError builds the error for a non-2xx response.
func newAPIError(rsp *Response) *APIError {
	e := &APIError{Status: rsp.Status, Body: rsp.Body, RequestID: rsp.RequestID}
	e.Errors, e.Text = parseErrorBody(rsp.Body)
	return e
}

// maxSummary is the longest APIError.Text, in runes.
const maxSummary = 200

// parseErrorBody reads an error body: an ApiErrors report in either form,
// else a short printable summary (an HTML page's title, or the start of the
// text with markup removed).
func parseErrorBody(body []byte) ([]finesse.APIError, string) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, ""
	}
	if trimmed[0] == '<' && !looksLikeHTML(trimmed) {
		if r, err := finesse.ParseAPIErrors(trimmed); err == nil && len(r.Errors) > 0 {
			return r.Errors, ""
		}
	}
	if t := htmlTitle(trimmed); t != "" {
		return nil, t
	}
	return nil, summarize(trimmed)
}

// looksLikeHTML reports whether a body starts like an HTML document.
func looksLikeHTML(b []byte) bool {
	head := b[:min(len(b), 64)]
	l := bytes.ToLower(head)
	return bytes.HasPrefix(l, []byte("<!doctype html")) || bytes.HasPrefix(l, []byte("<html"))
}

// htmlTitle returns the summarised content of the first <title> element,
// or "".
func htmlTitle(b []byte) string {
	l := bytes.ToLower(b)
	i := bytes.Index(l, []byte("<title"))
	if i < 0 {
		return ""
	}
	j := bytes.IndexByte(l[i:], '>')
	if j < 0 {
		return ""
	}
	start := i + j + 1
	end := bytes.Index(l[start:], []byte("</title"))
	if end < 0 {
		return ""
	}
	return summarize(b[start : start+end])
}

// summarize removes markup, collapses white space, drops control and
// invalid characters and cuts the result to at most maxSummary runes
// (ending in "…" when cut).
func summarize(b []byte) string {
	runes := make([]rune, 0, 64)
	inTag, space := false, false
	for len(b) > 0 && len(runes) <= maxSummary {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == '<':
			inTag, space = true, true
			continue
		case r == '>' && inTag:
			inTag = false
			continue
		case inTag:
			continue
		case r == utf8.RuneError && size <= 1:
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		case !unicode.IsPrint(r):
			continue
		}
		if space && len(runes) > 0 {
			runes = append(runes, ' ')
		}
		space = false
		runes = append(runes, r)
	}
	if len(runes) > maxSummary {
		runes = append(runes[:maxSummary-1], '…')
	}
	return string(runes)
}
