// Package cred is an agent's upstream credential, as one value that knows
// its kind: the XMPP SASL login and the REST Authorization header both ask
// a Source at every use, so a refreshed token is used at once and a
// password is never sent as a Bearer token (or a token as Basic).
package cred

import (
	"context"
	"encoding/base64"
	"errors"
)

// Kind says what Secret is.
type Kind uint8

// The credential kinds.
const (
	// Password is a non-SSO Finesse password: REST "Basic id:password",
	// XMPP SASL PLAIN with the password.
	Password Kind = iota + 1
	// Token is an SSO access token (IdS, or the one Finesse gave a gadget):
	// REST "Bearer token", XMPP SASL PLAIN with the token as password.
	Token
)

// String names the kind ("password", "token").
func (k Kind) String() string {
	switch k {
	case Password:
		return "password"
	case Token:
		return "token"
	}
	return "unknown"
}

// Credential is one agent's current secret with its kind.
type Credential struct {
	// LoginID is the Finesse loginId (the REST Basic user, the XMPP user).
	LoginID string
	// Kind says what Secret is.
	Kind Kind
	// Secret is the password or the access token. Never log it.
	Secret string
}

// Authorization is the REST Authorization header value.
func (c Credential) Authorization() string {
	if c.Kind == Token {
		return "Bearer " + c.Secret
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.LoginID+":"+c.Secret))
}

// Valid reports whether c can be used: a loginId, a known kind, a secret.
func (c Credential) Valid() bool {
	return c.LoginID != "" && (c.Kind == Password || c.Kind == Token) && c.Secret != ""
}

// Source gives an agent's current credential. It is asked at every use;
// implementations must be safe for concurrent use. An error wrapping
// ErrSignInAgain means the credential is gone for good (IdS refused the
// refresh): the agent must sign in again.
type Source interface {
	Credential(ctx context.Context) (Credential, error)
}

// ErrSignInAgain: the credential cannot be renewed; the agent must sign in
// again.
var ErrSignInAgain = errors.New("cred: sign in again")

// Static is a Source that always gives the same credential.
type Static Credential

// Credential returns the static credential.
func (s Static) Credential(context.Context) (Credential, error) {
	c := Credential(s)
	if !c.Valid() {
		return Credential{}, errors.New("cred: static credential without loginId, kind or secret")
	}
	return c, nil
}
