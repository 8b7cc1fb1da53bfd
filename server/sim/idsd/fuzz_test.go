package idsd

import (
	"errors"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings (and mutations of a real token) to
// Verify: no panic, and every refusal is one of the three sentinels.
func FuzzVerify(f *testing.F) {
	s, err := New(Config{Clients: map[string]Client{"c": {Secret: "s", RedirectURIs: []string{"https://r/cb"}}}, Users: []User{{ID: "u", Password: "p"}}})
	if err != nil {
		f.Fatal(err)
	}
	access, refresh, err := s.IssueForTest("u", "c")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{access, refresh, "", "a.b.c", strings.Replace(access, ".", "..", 1), access + "x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err == nil {
			if token != access || c.UserID != "u" {
				t.Fatalf("accepted %q as %+v", token, c)
			}
			return
		}
		if !errors.Is(err, ErrTokenInvalid) && !errors.Is(err, ErrTokenExpired) && !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	s, err := New(Config{Clients: map[string]Client{"c": {Secret: "s", RedirectURIs: []string{"https://r/cb"}}}, Users: []User{{ID: "u", Password: "p"}}})
	if err != nil {
		b.Fatal(err)
	}
	access, _, err := s.IssueForTest("u", "c")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(access); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	s, err := New(Config{Clients: map[string]Client{"c": {Secret: "s", RedirectURIs: []string{"https://r/cb"}}}, Users: []User{{ID: "u", Password: "p"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.IssueForTest("u", "c"); err != nil {
			b.Fatal(err)
		}
	}
}
