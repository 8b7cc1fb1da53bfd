// Package rest is the relay's token-bearing Finesse REST client and the
// browser-facing REST proxy built on it.
//
// A Client sends every request to the side the session currently uses
// (Config.Side), with the agent's credentials taken at call time
// (Credentials: Basic for non-SSO users, Bearer from an oauth2.TokenSource
// for SSO users), Accept: application/xml, a requestId header, a per-call
// timeout and a response size limit. Do returns Finesse's answer whatever its
// status (the proxy passes it through); the typed calls (User, Dialogs,
// SetState, ...) turn a non-2xx answer into an *APIError that errors.Is
// matches against ErrUnauthorized, ErrForbidden, ErrNotFound and
// ErrOutOfService. Network failures and timeouts wrap ErrUnreachable.
//
// The client never retries a refused Basic credential: Finesse locks an
// account for five minutes after five failed sign-ins. After a 401 that
// reports an authentication failure it refuses, without a network call, to
// send the same Basic credential again (ErrCredentialRefused) until the
// Credentials yield a different one. With a Bearer token it retries once
// after a 401, and only when the Credentials then yield a different token.
// Redirects are never followed: Finesse redirects plain HTTP to 8445, and a
// redirect answer is reported as ErrRedirect naming the configured port.
//
// NewProxy returns the http.Handler mounted under /api/finesse/. It
// authenticates the caller through ProxyConfig.Resolve, admits only the
// method and path pairs of its allow-list, forwards a small set of headers,
// and returns Finesse's status, body and Content-Type unchanged. Failures on
// the relay's side are JSON {"error":{"code","message"}}.
//
// # Concurrency
//
// A Client and the proxy handler are safe for concurrent use by many
// goroutines. Neither starts goroutines of its own; every call runs on the
// caller's goroutine and ends when its context ends or its timeout expires.
// Config and ProxyConfig must not be changed after New or NewProxy. The
// functions in Config (Side, OnStatus) and Credentials.Authorization are
// called from the calling goroutines, concurrently, and must be safe for
// that.
package rest
