package main

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// FuzzParseEnvFile feeds arbitrary env files to the parser. It must never
// panic, fail only with a *ConfigError naming the file, accept only known
// keys (stored under their canonical names), and what it accepts must
// read back the same when written out again as KEY="value" lines.
func FuzzParseEnvFile(f *testing.F) {
	seeds := []string{
		"IDS_URL=https://ids.example.com:8553\nclient_id=relay\n",
		"# comment\n\n  export SERVER_PORT = 1125  \nallowedOrigins='https://a:8445,https://b:8445'\n",
		"server.ssl.key-store-password=\"p@ss=word\"\r\nLOG_LEVEL=debug\r\n",
		"FINESSE_A_HOST=finesse-a.example.com\nFINESSE_A_XMPP_TRANSPORT=bosh\n",
		"XMPP_PING_INTERVAL=\"\"\nSESSION_GRACE='\"'\n",
		"no equals sign\n", "UNKNOWN_KEY=1\n", "=value\n", "export \n",
		"client_id=\"a\"b\"\n", "ids1_url=x\nIDS_URL=y\n", strings.Repeat("a", 70000),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	names := canonical()
	canon := map[string]bool{}
	for _, n := range names {
		canon[n] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]string{}
		err := parseEnvFile("fuzz.env", data, names, got)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "fuzz.env") {
				t.Fatalf("error %v is not a ConfigError naming the file", err)
			}
			return
		}
		var b strings.Builder
		for k, v := range got {
			if !canon[k] {
				t.Fatalf("stored under %q, not a canonical key name", k)
			}
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("value of %s spans lines: %q", k, v)
			}
			fmt.Fprintf(&b, "%s=\"%s\"\n", k, v)
		}
		again := map[string]string{}
		if err := parseEnvFile("again.env", []byte(b.String()), names, again); err != nil {
			t.Fatalf("written back, it no longer parses: %v\n%s", err, b.String())
		}
		if !maps.Equal(got, again) {
			t.Fatalf("round trip changed the values:\n%q\n%q", got, again)
		}
	})
}
