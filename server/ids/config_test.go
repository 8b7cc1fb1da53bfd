package ids_test

import (
	"strings"
	"testing"

	"finesse-relay/server/ids"
)

func TestNewValidation(t *testing.T) {
	valid := ids.Config{Nodes: []string{"https://ids-pub:8553", "https://ids-sub:8553/"}, ClientID: "c", ClientSecret: "s", RedirectURL: "https://relay:1125/idscallback"}
	with := func(f func(*ids.Config)) ids.Config {
		c := valid
		c.Nodes = append([]string(nil), valid.Nodes...)
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  ids.Config
		want string // text the error must contain; "" = valid
	}{
		{"valid", valid, ""},
		{"loopback http", with(func(c *ids.Config) {
			c.Nodes = []string{"http://127.0.0.1:8553"}
			c.RedirectURL = "http://localhost:1125/idscallback"
		}), ""},
		{"empty secret is allowed", with(func(c *ids.Config) { c.ClientSecret = "" }), ""},
		{"no nodes", with(func(c *ids.Config) { c.Nodes = nil }), "IDS_URL"},
		{"http on a public host", with(func(c *ids.Config) { c.Nodes = []string{"http://ids.example.com:8553"} }), "IDS_URL"},
		{"no scheme", with(func(c *ids.Config) { c.Nodes = []string{"ids.example.com:8553"} }), "IDS_URL"},
		{"ftp", with(func(c *ids.Config) { c.Nodes = []string{"ftp://ids.example.com"} }), "IDS_URL"},
		{"query", with(func(c *ids.Config) { c.Nodes = []string{"https://ids?x=1"} }), "IDS_URL"},
		{"user info", with(func(c *ids.Config) { c.Nodes = []string{"https://u:p@ids"} }), "IDS_URL"},
		{"duplicate node", with(func(c *ids.Config) { c.Nodes = []string{"https://ids", "https://ids/"} }), "IDS_URL"},
		{"no client id", with(func(c *ids.Config) { c.ClientID = "" }), "client_id"},
		{"no redirect", with(func(c *ids.Config) { c.RedirectURL = "" }), "REDIRECT_URI"},
		{"relative redirect", with(func(c *ids.Config) { c.RedirectURL = "/idscallback" }), "REDIRECT_URI"},
		{"http redirect on a public host", with(func(c *ids.Config) { c.RedirectURL = "http://relay.example.com/idscallback" }), "REDIRECT_URI"},
		{"RefreshAt 1", with(func(c *ids.Config) { c.RefreshAt = 1 }), "RefreshAt"},
		{"RefreshAt negative", with(func(c *ids.Config) { c.RefreshAt = -0.1 }), "RefreshAt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ids.New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "ids: ") {
				t.Fatalf("err %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestAuthCodeURLShape(t *testing.T) {
	c, err := ids.New(ids.Config{Nodes: []string{"https://ids-pub:8553/"}, ClientID: "client 1", ClientSecret: "s", RedirectURL: "https://relay:1125/idscallback"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.AuthCodeURL("st&ate")
	want := "https://ids-pub:8553/ids/v1/oauth/authorize?client_id=client+1&redirect_uri=https%3A%2F%2Frelay%3A1125%2Fidscallback&response_type=code&state=st%26ate"
	if got != want {
		t.Fatalf("AuthCodeURL\n got %s\nwant %s", got, want)
	}
}
