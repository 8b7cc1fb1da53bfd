package rest

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"

	"finesse-relay/server/cred"
)

// Credentials give the agent's credential at every call, so a refreshed
// token is used as soon as it exists; the credential's kind decides the
// header (Basic for a password, Bearer for a token). It is the same
// interface the XMPP login asks (cred.Source).
type Credentials = cred.Source

// Basic are the credentials of a non-SSO user: "Basic
// base64(loginId:password)".
type Basic struct {
	Username, Password string
}

// Credential returns the password credential.
func (b Basic) Credential(context.Context) (cred.Credential, error) {
	if b.Username == "" {
		return cred.Credential{}, errors.New("rest: basic credentials without a username")
	}
	return cred.Credential{LoginID: b.Username, Kind: cred.Password, Secret: b.Password}, nil
}

// Bearer are the credentials of an SSO user: "Bearer <access token>" from
// Source (usually the session's refreshing IdS token source). A refresh
// error from Source is returned, wrapped.
type Bearer struct {
	Source oauth2.TokenSource
}

// Credential returns the token credential.
func (b Bearer) Credential(context.Context) (cred.Credential, error) {
	if b.Source == nil {
		return cred.Credential{}, errors.New("rest: bearer credentials without a token source")
	}
	tok, err := b.Source.Token()
	if err != nil {
		return cred.Credential{}, fmt.Errorf("rest: token: %w", err)
	}
	if tok.AccessToken == "" {
		return cred.Credential{}, errors.New("rest: token source returned an empty access token")
	}
	return cred.Credential{Kind: cred.Token, Secret: tok.AccessToken}, nil
}

var (
	_ Credentials = Basic{}
	_ Credentials = Bearer{}
)
