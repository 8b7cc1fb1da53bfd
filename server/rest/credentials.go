package rest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// Credentials produce the Authorization header value of a call. The client
// asks at every call, so a refreshed token is used as soon as it exists.
// Implementations must be safe for concurrent use.
type Credentials interface {
	// Authorization returns the full header value, e.g. "Basic ..." or
	// "Bearer ...".
	Authorization(ctx context.Context) (string, error)
}

// Basic are the credentials of a non-SSO user: "Basic
// base64(loginId:password)".
type Basic struct {
	Username, Password string
}

// Authorization returns the Basic header value.
func (b Basic) Authorization(context.Context) (string, error) {
	if b.Username == "" {
		return "", errors.New("rest: basic credentials without a username")
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(b.Username+":"+b.Password)), nil
}

// Bearer are the credentials of an SSO user: "Bearer <access token>" from
// Source (usually the session's refreshing IdS token source). A refresh
// error from Source is returned, wrapped.
type Bearer struct {
	Source oauth2.TokenSource
}

// Authorization returns the Bearer header value.
func (b Bearer) Authorization(context.Context) (string, error) {
	if b.Source == nil {
		return "", errors.New("rest: bearer credentials without a token source")
	}
	tok, err := b.Source.Token()
	if err != nil {
		return "", fmt.Errorf("rest: token: %w", err)
	}
	if tok.AccessToken == "" {
		return "", errors.New("rest: token source returned an empty access token")
	}
	return "Bearer " + tok.AccessToken, nil
}

var (
	_ Credentials = Basic{}
	_ Credentials = Bearer{}
)
