package sim

import (
	"errors"
	"net/http"

	"finesse-relay/xmpp/finesse"
)

// Errors of the Go API (PlaceCall, SetSideInService, ...). Callers branch
// with errors.Is.
var (
	// ErrUnknownQueue: PlaceCall named a queue the simulator does not have.
	ErrUnknownQueue = errors.New("sim: unknown queue")
	// ErrInvalidAddress: a caller number that is not digits (optionally
	// with a leading +), or longer than 32.
	ErrInvalidAddress = errors.New("sim: invalid address")
	// ErrUnknownSide: a side other than "A" or "B".
	ErrUnknownSide = errors.New("sim: unknown side")
	// ErrUnknownUser: no user has that login id or login name.
	ErrUnknownUser = errors.New("sim: unknown user")
	// ErrQueueFull: too many calls are already waiting.
	ErrQueueFull = errors.New("sim: queue full")
)

// restError is a synchronous Finesse REST error: a status and one
// <ApiError> (finesse-protocol.md C.2), or, for a refused credential, the
// servlet container's HTML page (html).
type restError struct {
	status         int
	typ, msg, data string
	media          string // ErrorMedia: the MRD of a Media error
	html           bool
}

func (e *restError) apiErrors() *finesse.APIErrors {
	return &finesse.APIErrors{Errors: []finesse.APIError{{ErrorType: e.typ, ErrorMessage: e.msg, ErrorData: e.data, ErrorMedia: e.media}}}
}

func errMissing(field string) *restError {
	return &restError{status: http.StatusBadRequest, typ: "Parameter Missing", msg: field + " is required", data: field}
}

func errInput(field, why string) *restError {
	return &restError{status: http.StatusBadRequest, typ: "Invalid Input", msg: why, data: field}
}

func errState(from, to string) *restError {
	msg := "invalid state change from " + from + " to " + to
	if from == "" {
		msg = to
	}
	return &restError{status: http.StatusBadRequest, typ: "Invalid State", msg: msg, data: to}
}

// errUnauthorized refuses a missing, wrong or locked credential. Finesse's
// container answers these before the API sees the request, with an HTML
// error page rather than ApiErrors (finesse-protocol.md C.2, "Some auth
// failures come back as an HTML Tomcat error page"); the simulator always
// does, the harder case for clients.
func errUnauthorized(who string) *restError {
	return &restError{status: http.StatusUnauthorized, typ: "Authentication Failure", msg: "UNAUTHORIZED", data: who, html: true}
}

// errForbidden refuses an authenticated user acting on, or reading,
// another user's object: Finesse answers 401 "Invalid Authorization User
// Specified" with ApiErrors, never 403 (403 is for configuration APIs on
// the secondary node), e.g. developer.cisco.com/docs/finesse/user-api-errors
// and the failure example of "Media - Get List".
func errForbidden(who string) *restError {
	return &restError{status: http.StatusUnauthorized, typ: "Invalid Authorization User Specified",
		msg: "The user specified in the authentication credentials and the uri don't match", data: who}
}

// errNotSupervisor refuses an agent a supervisor-only API (Team):
// 401 Authorization Failure (developer.cisco.com/docs/finesse/team-api-errors).
func errNotSupervisor(who string) *restError {
	return &restError{status: http.StatusUnauthorized, typ: "Authorization Failure",
		msg: "The user is not authorized to use this API", data: who}
}

func errNotFound(what, id string) *restError {
	return &restError{status: http.StatusNotFound, typ: "Not Found", msg: what + " Not Found", data: id}
}

func errMethod(method string) *restError {
	return &restError{status: http.StatusMethodNotAllowed, typ: "Method Not Allowed", msg: method + " is not supported on this resource", data: method}
}

func errUnavailable() *restError {
	return &restError{status: http.StatusServiceUnavailable, typ: "Service Unavailable", msg: "Finesse is OUT_OF_SERVICE; retry after several seconds", data: "OUT_OF_SERVICE"}
}
