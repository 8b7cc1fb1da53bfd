package cred

import (
	"context"
	"testing"
)

func TestAuthorization(t *testing.T) {
	tests := []struct {
		c    Credential
		want string
	}{
		{Credential{LoginID: "1001", Kind: Password, Secret: "demo"}, "Basic MTAwMTpkZW1v"},
		{Credential{LoginID: "1001", Kind: Token, Secret: "eyJ.x.y"}, "Bearer eyJ.x.y"},
	}
	for _, tc := range tests {
		if got := tc.c.Authorization(); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.c.Kind, got, tc.want)
		}
	}
}

func TestStatic(t *testing.T) {
	if _, err := (Static{LoginID: "1001", Kind: Password}).Credential(context.Background()); err == nil {
		t.Error("a static credential without a secret must be refused")
	}
	c, err := Static{LoginID: "1001", Kind: Token, Secret: "t"}.Credential(context.Background())
	if err != nil || c.Kind != Token {
		t.Fatalf("got %+v, %v", c, err)
	}
}
