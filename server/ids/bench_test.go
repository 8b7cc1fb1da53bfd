package ids_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerify is local verification with the cached IdS key (the
// per-sign-in cost when IdS publishes its key).
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, fixtureOpt{})
	tok := f.signedIn()
	ctx := context.Background()
	if _, err := f.client.Verify(ctx, tok.AccessToken); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.client.Verify(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenSourceToken is the hot path: Token() between refreshes.
func BenchmarkTokenSourceToken(b *testing.B) {
	f := newFixture(b, fixtureOpt{})
	ts := f.client.TokenSource(f.signedIn())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.Token(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRefresh is one refresh against the simulator over loopback TLS
// (keep-alive connection): the IdS round trip plus signing a new pair.
func BenchmarkRefresh(b *testing.B) {
	f := newFixture(b, fixtureOpt{})
	f.sim.SetLifetimes(300*time.Second, 1000*time.Hour)
	ts := f.client.TokenSource(f.signedIn())
	b.ReportAllocs()
	for b.Loop() {
		f.clock.Advance(226 * time.Second)
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
}
