package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/oauth2"

	"finesse-relay/server/agent"
	"finesse-relay/server/ids"
)

// seqSource hands out tok-1, tok-1, tok-2, ... then fails with err.
type seqSource struct {
	n    int
	toks []string
	err  error
}

func (s *seqSource) Token() (*oauth2.Token, error) {
	if s.n >= len(s.toks) {
		return nil, s.err
	}
	t := s.toks[s.n]
	s.n++
	return &oauth2.Token{AccessToken: t}, nil
}

func TestCredHolderCountsRefreshesAndEndsOnInvalidGrant(t *testing.T) {
	var ok, failed int
	h := &credHolder{refresh: func(good bool) {
		if good {
			ok++
		} else {
			failed++
		}
	}}
	src := &seqSource{toks: []string{"tok-1", "tok-1", "tok-2"}, err: fmt.Errorf("%w: invalid_grant", ids.ErrSignInAgain)}
	h.set(signInCreds{sso: true, source: src})
	for _, want := range []string{"tok-1", "tok-1", "tok-2"} {
		got, err := h.secret(context.Background())
		if err != nil || got != want {
			t.Fatalf("secret: %q %v, want %q", got, err, want)
		}
	}
	if _, err := h.secret(context.Background()); !errors.Is(err, agent.ErrSignInAgain) {
		t.Fatalf("invalid_grant must become agent.ErrSignInAgain (the session ends with 4101), got %v", err)
	}
	if ok != 1 || failed != 1 {
		t.Fatalf("refreshes counted ok=%d failed=%d, want 1 and 1", ok, failed)
	}
	// A password holder never touches IdS.
	p := &credHolder{}
	p.set(signInCreds{password: "demo"})
	if got, _ := p.secret(context.Background()); got != "demo" {
		t.Fatalf("password: %q", got)
	}
}
