package gadget

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func TestTickets(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tk := NewTickets(30*time.Second, func() time.Time { return now })
	s := NewStream(StreamConfig{})

	a, ttl := tk.Issue(s)
	if ttl != 30*time.Second {
		t.Fatalf("ttl = %v", ttl)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a); err != nil || len(raw) != 32 {
		t.Fatalf("ticket %q: %d bytes, %v", a, len(raw), err)
	}
	b, _ := tk.Issue(s)
	if a == b {
		t.Fatal("two tickets are equal")
	}
	steps := []struct {
		name    string
		advance time.Duration
		ticket  string
		want    error
	}{
		{"first use", 0, a, nil},
		{"replay", 0, a, ErrTicketUsed},
		{"unknown", 0, "bm9wZQ", ErrTicketUnknown},
		{"expired", 30 * time.Second, b, ErrTicketExpired},
		{"used, still remembered", 0, a, ErrTicketUsed},
		{"forgotten after another ttl", 30 * time.Second, b, ErrTicketUnknown},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		got, err := tk.Redeem(st.ticket)
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
		if err == nil && got != s {
			t.Fatalf("%s: wrong stream", st.name)
		}
	}
	if n := tk.Len(); n != 0 {
		t.Fatalf("%d tickets remembered after they expired", n)
	}
}

func TestTicketsSweepAndBound(t *testing.T) {
	now := time.Unix(0, 0)
	tk := NewTickets(time.Second, func() time.Time { return now })
	s := NewStream(StreamConfig{})
	for range 1000 {
		tk.Issue(s)
	}
	now = now.Add(3 * time.Second)
	tk.Issue(s)
	if n := tk.Len(); n != 1 {
		t.Fatalf("Len = %d after sweeping, want 1", n)
	}
	first, _ := tk.Issue(s)
	for range maxTickets {
		tk.Issue(s)
	}
	if n := tk.Len(); n > maxTickets {
		t.Fatalf("Len = %d, above the bound %d", n, maxTickets)
	}
	if _, err := tk.Redeem(first); !errors.Is(err, ErrTicketUnknown) {
		t.Fatalf("oldest ticket past the bound: %v, want unknown", err)
	}
}
