//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"finesse-relay/server/signin"
)

// post sends a JSON body to the relay and returns the status, headers and body.
func (st *stack) post(t *testing.T, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, st.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return rsp.StatusCode, rsp.Header, string(b)
}

// Hole 1: anyone could lock an agent's Finesse account by posting wrong
// passwords. The relay forwards at most SIGNIN_MAX_FAILURES, answers 429
// with Retry-After after that, counts it, and the account is not locked
// (the simulator locks after five failures, like Finesse).
func TestEndToEndWrongPasswordsNeverLockTheAccount(t *testing.T) {
	st := startStack(t, stackOptions{relay: func(c *Config) { c.SignInFailureWindow = 2 * time.Second }})
	var statuses []int
	for i := range 6 {
		code, hdr, body := st.post(t, "/api/v1/sessions", fmt.Sprintf(`{"loginId":"1016","password":"w%d"}`, i), nil)
		statuses = append(statuses, code)
		if code == http.StatusTooManyRequests {
			if !strings.Contains(body, `"too_many_attempts"`) || hdr.Get("Retry-After") == "" {
				t.Fatalf("429 without its code or Retry-After: %v %s", hdr, body)
			}
		}
	}
	want := []int{401, 401, 401, 429, 429, 429}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	if v := metricValue(t, st, `finesse_relay_credential_failures_total{kind="throttled"}`); v != 3 {
		t.Errorf("throttled failures counted %v, want 3", v)
	}
	if v := metricValue(t, st, `finesse_relay_credential_failures_total{kind="refused"}`); v != 3 {
		t.Errorf("refused failures counted %v, want 3", v)
	}
	// Two windows later the right password works: Finesse never locked it.
	time.Sleep(4 * time.Second)
	code, _, body := st.post(t, "/api/v1/sessions", `{"loginId":"1016","password":"demo"}`, nil)
	if code != http.StatusCreated {
		t.Fatalf("right password after the window: %d %s (the account must not be locked)", code, body)
	}
}

// Hole 5: the credential's kind travels with it. A token sign-in and then
// a password sign-in of one agent (and the reverse): every REST call of
// both relay sessions keeps working.
func TestEndToEndMixedSignInMethodsKeepWorking(t *testing.T) {
	st := startStack(t, stackOptions{})
	access, _, err := st.sim.IdS().IssueForTest("agent1001", demoClientID)
	if err != nil {
		t.Fatal(err)
	}
	tokenFirst := st.postSession(t, "/api/v1/sessions", fmt.Sprintf(`{"loginId":"1001","authToken":%q}`, access), "")
	password := st.signIn(t, "1001")
	tokenAgain := st.postSession(t, "/api/v1/sessions", fmt.Sprintf(`{"loginId":"1001","authToken":%q}`, access), "")
	for _, s := range []signIn{tokenFirst, password, tokenAgain} {
		if code, _, body := st.finesse(t, s.Session, http.MethodGet, "User/1001", ""); code != http.StatusOK {
			t.Fatalf("GET User/1001 through the proxy: %d %s", code, body)
		}
	}
	if v := metricValue(t, st, `finesse_relay_credential_failures_total{kind="refused"}`); v != 0 {
		t.Errorf("%v refused credentials counted, want 0", v)
	}
}

// Hole 7: a cookie-authenticated POST /api/v1/tickets must not return the
// HttpOnly cookie's value in JSON (a script could read it); a Bearer
// caller gets its session echoed.
func TestEndToEndCookieTicketCarriesNoSession(t *testing.T) {
	st := startStack(t, stackOptions{})
	a := st.signIn(t, "1001")
	own := st.base
	code, _, body := st.post(t, "/api/v1/tickets", "", map[string]string{
		"Cookie": signin.SessionCookie + "=" + a.Session, signin.CSRFHeader: "1", "Origin": own,
	})
	var r map[string]any
	if err := json.Unmarshal([]byte(body), &r); err != nil || code != http.StatusCreated {
		t.Fatalf("cookie ticket: %d %s", code, body)
	}
	if _, ok := r["session"]; ok || strings.Contains(body, a.Session) {
		t.Fatalf("the cookie's value is in the JSON: %s", body)
	}
	code, _, body = st.post(t, "/api/v1/tickets", "", map[string]string{"Authorization": "Bearer " + a.Session})
	if code != http.StatusCreated || !strings.Contains(body, a.Session) {
		t.Fatalf("bearer ticket: %d %s", code, body)
	}
	// A sign-in from the relay's own page gets the cookie, not the token in JSON.
	code, hdr, body := st.post(t, "/api/v1/sessions", `{"loginId":"1002","password":"demo"}`, map[string]string{"Origin": own})
	if code != http.StatusCreated || strings.Contains(body, `"session"`) || !strings.Contains(hdr.Get("Set-Cookie"), signin.SessionCookie+"=") {
		t.Fatalf("own-page sign-in: %d %v %s", code, hdr, body)
	}
}
