package ids

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzUnverifiedClaims feeds arbitrary tokens to the reader of an IdS JWT
// that could not be verified locally (the relay then lets Finesse verify
// it). It must never panic and, when it accepts a token, answer a user_id
// that the token's payload really contains.
func FuzzUnverifiedClaims(f *testing.F) {
	enc := base64.RawURLEncoding
	tok := func(payload string) string {
		return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"
	}
	for _, s := range []string{
		tok(`{"exp":1900000000,"sub":"{\"user_id\":\"agent1001\",\"usage\":\"access\"}"}`),
		tok(`{"user_id":"agent1001"}`),
		tok(`{"sub":"{}"}`), tok(`{"sub":{"user_id":"x","usage":"access"},"exp":1}`), tok(`[]`), tok(`null`),
		"a.b.c", "a.b", "", "..", "a.!!!.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jwt string) {
		c, err := UnverifiedClaims(jwt)
		if err != nil {
			return
		}
		if c.UserID == "" {
			t.Fatal("accepted a token without a user_id")
		}
		payload, derr := enc.DecodeString(strings.Split(jwt, ".")[1])
		if derr != nil {
			t.Fatalf("accepted an undecodable payload: %v", derr)
		}
		if !strings.Contains(string(payload), c.UserID) && !strings.Contains(string(payload), `\`) {
			t.Fatalf("user_id %q is not in the payload %q", c.UserID, payload)
		}
	})
}
