package gadget

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func TestTickets(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tk := NewTickets(TicketsConfig{TTL: 30 * time.Second, Now: func() time.Time { return now }})
	s := NewStream(StreamConfig{})

	a, ttl, err := tk.Issue(s, "sess-1")
	if err != nil || ttl != 30*time.Second {
		t.Fatalf("Issue: ttl = %v, err = %v", ttl, err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a); err != nil || len(raw) != 32 {
		t.Fatalf("ticket %q: %d bytes, %v", a, len(raw), err)
	}
	b, _, _ := tk.Issue(s, "sess-1")
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
		got, err := tk.Redeem(context.Background(), st.ticket)
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
		if err == nil && (got.Stream != s || got.Session != "sess-1") {
			t.Fatalf("%s: grant %+v, want the stream and session it was issued to", st.name, got)
		}
	}
	if n := tk.Len(); n != 0 {
		t.Fatalf("%d tickets remembered after they expired", n)
	}
}

// Hole 3 of issue 12: one session issuing tickets in a loop evicted another
// agent's fresh ticket from the relay-wide table.
func TestTicketsOneSessionCannotEvictAnother(t *testing.T) {
	now := time.Unix(0, 0)
	tk := NewTickets(TicketsConfig{TTL: 30 * time.Second, MaxPerSession: 4, Now: func() time.Time { return now }})
	s := NewStream(StreamConfig{})
	victim, _, err := tk.Issue(s, "victim")
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for range 70_000 {
		if _, _, err := tk.Issue(s, "attacker"); errors.Is(err, ErrTooManyTickets) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused != 70_000-4 {
		t.Fatalf("%d of 70000 refused, want all but the cap (4)", refused)
	}
	if n := tk.Len(); n != 5 {
		t.Fatalf("Len = %d, want 5 (bounded by sessions × cap)", n)
	}
	g, err := tk.Redeem(context.Background(), victim)
	if err != nil || g.Session != "victim" {
		t.Fatalf("the victim's ticket: %+v, %v", g, err)
	}
}

func TestTicketsPerSessionCap(t *testing.T) {
	now := time.Unix(0, 0)
	tk := NewTickets(TicketsConfig{TTL: 10 * time.Second, MaxPerSession: 2, Now: func() time.Time { return now }})
	s := NewStream(StreamConfig{})
	ctx := context.Background()
	issue := func() (string, error) {
		k, _, err := tk.Issue(s, "s")
		return k, err
	}
	a, _ := issue()
	b, _ := issue()
	if _, err := issue(); !errors.Is(err, ErrTooManyTickets) {
		t.Fatalf("third outstanding ticket: %v, want ErrTooManyTickets", err)
	}
	if _, _, err := tk.Issue(s, "other"); err != nil {
		t.Fatalf("another session is not capped by this one: %v", err)
	}
	// Redeeming one frees a slot.
	if _, err := tk.Redeem(ctx, a); err != nil {
		t.Fatal(err)
	}
	c, err := issue()
	if err != nil {
		t.Fatalf("after a redeem: %v", err)
	}
	// Expiry frees slots too.
	now = now.Add(10 * time.Second)
	d, err := issue()
	if err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if _, err := issue(); err != nil {
		t.Fatalf("second after expiry: %v", err)
	}
	// Spent tickets (a used, b and c expired) stay bounded per session: at
	// most MaxPerSession remembered; the oldest spent one is forgotten.
	for _, k := range []string{a, b, c} {
		if _, err := tk.Redeem(ctx, k); err == nil {
			t.Fatalf("spent ticket %q redeemed", k)
		}
	}
	if n := tk.Len(); n > 2*2+1 {
		t.Fatalf("Len = %d, above 2×cap per session (+1 for the other session)", n)
	}
	if _, err := tk.Redeem(ctx, d); err != nil {
		t.Fatalf("a live ticket was forgotten: %v", err)
	}
}

func TestTicketsRevoke(t *testing.T) {
	tk := NewTickets(TicketsConfig{})
	s := NewStream(StreamConfig{})
	gone, _, _ := tk.Issue(s, "signed-out")
	kept, _, _ := tk.Issue(s, "still-in")
	tk.Revoke("signed-out")
	if _, err := tk.Redeem(context.Background(), gone); !errors.Is(err, ErrTicketUnknown) {
		t.Fatalf("revoked ticket: %v, want unknown", err)
	}
	if _, err := tk.Redeem(context.Background(), kept); err != nil {
		t.Fatalf("another session's ticket: %v", err)
	}
}

func TestTicketsSweep(t *testing.T) {
	now := time.Unix(0, 0)
	tk := NewTickets(TicketsConfig{TTL: time.Second, MaxPerSession: 4, Now: func() time.Time { return now }})
	s := NewStream(StreamConfig{})
	for i := range 1000 {
		if _, _, err := tk.Issue(s, string(rune('a'+i%26))+string(rune('a'+i/26))); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(3 * time.Second)
	if _, _, err := tk.Issue(s, "late"); err != nil {
		t.Fatal(err)
	}
	if n := tk.Len(); n != 1 {
		t.Fatalf("Len = %d after sweeping, want 1", n)
	}
	tk.mu.Lock()
	sessions := len(tk.bySession)
	tk.mu.Unlock()
	if sessions != 1 {
		t.Fatalf("%d sessions remembered after sweeping, want 1", sessions)
	}
}
