package signin

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzCredentialRecord stores arbitrary bytes, sealed, as an agent's
// credential record (what a corrupt or tampered store would hold) and
// reads it back: never a panic; either an error or a usable credential of
// a known kind for that agent.
func FuzzCredentialRecord(f *testing.F) {
	for _, s := range []string{
		`{"kind":"password","secret":"demo","user":{"loginId":"1001"}}`,
		`{"kind":"token","secret":"t","user":{"loginId":"1001","roles":["Agent"]}}`,
		`{"kind":"ids","access":"a","refresh":"r","user":{"loginId":"1001"}}`,
		`{"kind":"bogus","user":{"loginId":"1001"}}`, `{"user":null}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, record []byte) {
		s, _ := newTestService(t)
		ctx := context.Background()
		key := credKey("1001")
		if err := s.cfg.Store.Put(ctx, key, s.cfg.Sealer.Seal(record, []byte(key)), 0); err != nil {
			t.Fatal(err)
		}
		c, err := agentSource{hs: s.creds, loginID: "1001"}.Credential(ctx)
		if err != nil {
			return
		}
		var r credRecord
		if json.Unmarshal(record, &r) != nil || c.LoginID != "1001" || !c.Valid() && c.Secret != "" {
			t.Fatalf("accepted %q as %+v", record, c)
		}
	})
}
