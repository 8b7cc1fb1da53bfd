package ids

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzParseClaims feeds arbitrary JWT payloads to the claims parser. It
// must never panic, must fail only with ErrTokenInvalid, and whatever it
// accepts must survive a round trip through the IdS token shape.
func FuzzParseClaims(f *testing.F) {
	seeds := []string{
		`{"iss":"ids.autobot.cvp","exp":1772438930,"iat":1772438630,"jti":"j","sub":"{\"scope\":[\"ccc_onprem_apps\"],\"rt\":\"r\",\"user_id\":\"agent1001\",\"realm\":\"demo.local\",\"upn\":\"agent1001@demo.local\",\"ids_id\":\"x\",\"client_id\":\"relay\",\"token\":\"j\",\"expiry\":1772438930000,\"usage\":\"access\",\"ver\":\"1.0\"}"}`,
		`{"iss":"ids","exp":1772438930,"sub":"{\"ids_id\":\"x\",\"client_id\":\"relay\",\"token\":\"r\",\"expiry\":1772446130000,\"usage\":\"refresh\",\"ver\":\"1.0\"}"}`,
		`{"sub":{"user_id":"a","usage":"access","expiry":1772438930000.5}}`,
		`{"exp":1e300,"sub":"{\"user_id\":\"a\",\"usage\":\"access\"}"}`,
		`{"exp":-1,"sub":"{\"user_id\":\"a\",\"usage\":\"access\"}"}`,
		`{"exp":"1772438930","sub":"{}"}`,
		`{"exp":1772438930,"sub":"\"nested\""}`,
		`{"exp":1772438930,"sub":"{\"user_id\":\"a\\u0000b\",\"usage\":\"access\"}"}`,
		`[]`, `null`, `{"sub":null}`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, usage, err := parseClaims(payload)
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("error %v does not wrap ErrTokenInvalid", err)
			}
			return
		}
		if usage == "" {
			t.Fatal("accepted without usage")
		}
		if usage == "access" && !validID(c.UserID) {
			t.Fatalf("accepted access token with user_id %q", c.UserID)
		}
		if c.Expiry.IsZero() || c.Expiry.Unix() <= 0 || c.Expiry.Unix() > maxUnixSecond {
			t.Fatalf("expiry %v out of range", c.Expiry)
		}
		// Round trip through the IdS shape (exp from Unix and Nanosecond:
		// UnixNano overflows after 2262, and IdS expiries go to 9999).
		sub, err := json.Marshal(map[string]any{"user_id": c.UserID, "client_id": c.ClientID, "usage": usage})
		if err != nil {
			t.Fatal(err)
		}
		again, err := json.Marshal(map[string]any{"iss": c.Issuer, "exp": float64(c.Expiry.Unix()) + float64(c.Expiry.Nanosecond())/1e9, "sub": string(sub)})
		if err != nil {
			t.Fatal(err)
		}
		c2, usage2, err := parseClaims(again)
		if err != nil {
			t.Fatalf("re-encoded claims refused: %v\n%s", err, again)
		}
		d := c2.Expiry.Sub(c.Expiry)
		if usage2 != usage || c2.UserID != c.UserID || c2.ClientID != c.ClientID || c2.Issuer != c.Issuer || d > time.Millisecond || d < -time.Millisecond {
			t.Fatalf("round trip changed the claims:\n%+v %s\n%+v %s", c, usage, c2, usage2)
		}
	})
}
