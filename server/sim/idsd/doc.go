// Package idsd is a simulated Cisco Identity Service (IdS): the OAuth 2.0
// authorization server that contact-center SSO puts in front of Finesse.
//
// It serves, under the paths a real IdS uses (reference part A):
//
//	GET  /ids/v1/oauth/authorize    sign-in page (authorization-code grant)
//	POST /ids/v1/oauth/authorize    sign-in form → 302 redirect_uri?code=…&state=…
//	POST /ids/v1/oauth/token        authorization_code and refresh_token grants
//	GET  /ids/v1/keys/token/public  the token-signing public key (PEM, PKIX)
//
// Tokens have the shape of real IdS tokens: RS256 JWTs with the header
// {"alg":"RS256","cty":"JWT"} and a "sub" claim that is a JSON *string*
// holding user_id, client_id, usage ("access" or "refresh"), scope, realm,
// upn, ids_id, token (= jti), expiry (ms) and ver. The signing key is an
// RSA-2048 key generated in memory by [New].
//
// Beyond the wire protocol the simulator enforces what a careful
// authorization server does (RFC 6749): codes are single use, bound to the
// client and redirect_uri and short-lived; redirect URIs match exactly
// (plus a loopback port wildcard, see [Client]); refresh tokens rotate and
// a rotated or revoked one answers invalid_grant; the refresh lifetime is
// absolute from sign-in (rotation never extends it). Tests and the simulated
// Finesse use [Server.Verify], [Server.Revoke], [Server.SetAvailable],
// [Server.SetLifetimes] and [Server.IssueForTest].
//
// Secrets, passwords, codes and tokens are never logged.
//
// # Concurrency
//
// A [Server] is safe for concurrent use: its state is guarded by one mutex
// and every method may be called while the handler serves requests. The
// package starts no goroutines; the caller owns the HTTP server that mounts
// [Server.Handler].
package idsd
