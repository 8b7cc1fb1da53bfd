package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIntrospection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.txt")
	if err := os.WriteFile(file, []byte("# comment\ntok-a 1001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &store{file: file, tokens: map[string]string{}}
	srv := httptest.NewServer(st.handler())
	defer srv.Close()

	introspect := func(tok string) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/introspect", url.Values{"token": {tok}, "client_id": {""}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}

	tests := []struct {
		name, token string
		status      int
		user        string
	}{
		{"from the file", "tok-a", 200, "1001"},
		{"unknown", "tok-b", 401, ""},
		{"empty", "", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := introspect(tt.token)
			if status != tt.status || body["active"] != (tt.status == 200) {
				t.Fatalf("status %d body %v, want %d", status, body, tt.status)
			}
			if tt.user != "" && body["username"] != tt.user {
				t.Errorf("username %v, want %s", body["username"], tt.user)
			}
		})
	}

	// Added at run time.
	resp, err := http.PostForm(srv.URL+"/tokens", url.Values{"token": {"tok-b"}, "username": {"1002"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, body := introspect("tok-b"); status != 200 || body["username"] != "1002" {
		t.Errorf("added token: %d %v", status, body)
	}
	// Appended to the file later: re-read on a miss.
	f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("tok-c 1003\n")
	f.Close()
	if status, body := introspect("tok-c"); status != 200 || body["username"] != "1003" {
		t.Errorf("appended token: %d %v", status, body)
	}
	// Bearer header works too.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/introspect", nil)
	req.Header.Set("Authorization", "Bearer tok-a")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("bearer: HTTP %d", resp.StatusCode)
	}
	// Bad add.
	resp, err = http.Post(srv.URL+"/tokens", "application/x-www-form-urlencoded", strings.NewReader("token=x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("add without username: HTTP %d, want 400", resp.StatusCode)
	}
	if calls, oks := st.stats(); calls != 6 || oks != 4 {
		t.Errorf("stats = %d calls, %d ok; want 6, 4", calls, oks)
	}
}
