package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzUnverifiedUserID feeds arbitrary tokens to the reader of user_id in
// an IdS JWT that could not be verified locally (the relay then lets
// Finesse verify it). It must never panic and, when it answers, answer a
// non-empty user_id that the token's payload really contains.
func FuzzUnverifiedUserID(f *testing.F) {
	enc := base64.RawURLEncoding
	tok := func(payload string) string {
		return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"
	}
	for _, s := range []string{
		tok(`{"sub":"{\"user_id\":\"agent1001\",\"usage\":\"access\"}"}`),
		tok(`{"user_id":"agent1001"}`),
		tok(`{"sub":"{}"}`), tok(`{"sub":{"user_id":"x"}}`), tok(`{"user_id":""}`), tok(`[]`), tok(`null`),
		"a.b.c", "a.b", "", "..", "a.!!!.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jwt string) {
		id, err := unverifiedUserID(jwt)
		if err != nil {
			if id != "" {
				t.Fatalf("an error and a user_id %q", id)
			}
			return
		}
		if id == "" {
			t.Fatal("no error and no user_id")
		}
		parts := strings.Split(jwt, ".")
		payload, derr := enc.DecodeString(parts[1])
		if derr != nil {
			t.Fatalf("accepted an undecodable payload: %v", derr)
		}
		// The id appears in the payload (JSON-escaped when it has to be).
		if utf8.ValidString(id) && !strings.Contains(string(payload), id) && !strings.Contains(string(payload), `\`) {
			t.Fatalf("user_id %q is not in the payload %q", id, payload)
		}
	})
}
