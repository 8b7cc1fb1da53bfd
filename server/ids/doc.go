// Package ids is the relay's client of Cisco Identity Service (IdS), the
// OAuth 2.0 server of contact-center SSO. It is built on golang.org/x/oauth2
// and covers what the relay needs:
//
//   - the sign-in redirect: [Client.BeginLogin] sets a state cookie and
//     returns the IdS authorize URL ([Client.AuthCodeURL]: response_type=code,
//     client_id, redirect_uri, state; no scope and no PKCE, which IdS lacks);
//     [Client.FinishLogin] checks the callback's state against that cookie
//     and returns the code;
//   - the code exchange ([Client.Exchange]) and a long-lived
//     [oauth2.TokenSource] ([Client.TokenSource]) that refreshes once 75 % of
//     the token's lifetime has passed, as Cisco requires of third-party apps;
//   - local verification of IdS access tokens ([Client.Verify]): RS256 JWTs
//     whose "sub" claim is a JSON string, checked with the public key that
//     IdS 12.6(2)+ publishes.
//
// IdS runs as a publisher/subscriber pair. Every call tries the configured
// nodes in order, starting with the last node that answered, and moves on
// when a node cannot be reached or answers 5xx; 4xx answers are final.
//
// The token endpoint's client authentication method is not documented
// (reference A.4, inferred): the client sends HTTP Basic first (RFC 6749
// §2.3.1) and, if IdS answers invalid_client, retries once with
// client_id/client_secret in the body and keeps using the body from then on.
//
// Errors: invalid_grant wraps [ErrSignInAgain] (the user must sign in again);
// unreachable or failing nodes wrap [ErrUnavailable] (retry later);
// rejected client credentials wrap [ErrClientRejected]. [*RequestError]
// names the node, the HTTP status and the OAuth error; [errors.As] also
// reaches the underlying [*oauth2.RetrieveError]. Tokens, codes, secrets
// and cookies are never logged or put in error messages.
//
// # Concurrency
//
// A [Client] and the token sources it returns are safe for concurrent use.
// The package starts no goroutines. A token source refreshes lazily inside
// Token(), one refresh at a time (concurrent callers wait for it), under
// its own timeout and never under a caller's request context.
package ids
