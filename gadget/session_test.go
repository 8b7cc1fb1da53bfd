package gadget

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Issue 12, "no cap on WebSockets per relay session": one agent held 4,000
// sockets. The cap is per relay session and checked before the upgrade.
func TestSocketsPerSessionCap(t *testing.T) {
	h := newHarness(t, GatewayConfig{MaxSocketsPerSession: 2}, StreamConfig{})
	open := func(session string) (*client, *http.Response, error) {
		return h.tryDial(h.wsURL(h.ticket(session), nil), nil)
	}
	var first []*client
	for range 2 {
		c, rsp, err := open("a")
		if err != nil {
			t.Fatalf("dial within the cap: %v %s", err, rspText(rsp))
		}
		c.expect("welcome")
		first = append(first, c)
	}
	_, rsp, err := open("a")
	if err == nil {
		t.Fatal("third socket of one session accepted, want 429")
	}
	if st, code, _ := httpError(t, rsp); st != http.StatusTooManyRequests || code != "too_many_connections" {
		t.Fatalf("over the cap: %d %s, want 429 too_many_connections", st, code)
	}
	if n := h.gw.SessionConns("a"); n != 2 {
		t.Fatalf("SessionConns(a) = %d after a refusal, want 2", n)
	}
	// Another session is not affected.
	c, rsp, err := open("b")
	if err != nil {
		t.Fatalf("another session refused: %v %s", err, rspText(rsp))
	}
	c.expect("welcome")
	// Closing one socket frees its slot.
	_ = first[0].ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseNormal, ""), time.Now().Add(time.Second))
	first[0].expectClose(CloseNormal)
	eventually(t, "the slot to be released", func() bool { return h.gw.SessionConns("a") == 1 })
	c, rsp, err = open("a")
	if err != nil {
		t.Fatalf("after a close: %v %s", err, rspText(rsp))
	}
	c.expect("welcome")
}

// Issue 12, hole 6: after sign-out the WebSockets opened with that relay
// session kept receiving events.
func TestCloseSessionClosesOnlyThatSession(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	dial := func(session string) *client {
		c, rsp, err := h.tryDial(h.wsURL(h.ticket(session), nil), nil)
		if err != nil {
			t.Fatalf("dial: %v %s", err, rspText(rsp))
		}
		c.expect("welcome")
		return c
	}
	out1, out2, stay := dial("signing-out"), dial("signing-out"), dial("other")

	h.stream.Event("/finesse/api/User/1001", "PUT", "", "r1", userData{LoginID: "1001", State: "READY"}, nil)
	h.gw.CloseSession("signing-out", CloseSignedOut, "signed_out")
	for _, c := range []*client{out1, out2} {
		got := c.expectClose(CloseSignedOut)
		if len(got) != 1 || got[0].RequestID != "r1" {
			t.Fatalf("the queued event must be delivered before the close: %+v", got)
		}
	}
	if m := stay.expect("event"); m.RequestID != "r1" {
		t.Fatalf("other session: %+v", m)
	}
	h.stream.Event("/finesse/api/User/1001", "PUT", "", "r2", userData{LoginID: "1001", State: "NOT_READY"}, nil)
	if m := stay.expect("event"); m.RequestID != "r2" {
		t.Fatalf("the other session must keep receiving events: %+v", m)
	}
	eventually(t, "the signed-out session's slots", func() bool { return h.gw.SessionConns("signing-out") == 0 })
	if metric(t, h.reg, "finesse_relay_ws_closes_total", "code", "4100") != 2 {
		t.Fatal("closes_total{code=4100} must count both sockets")
	}
	h.gw.CloseSession("never-seen", CloseSignedOut, "signed_out") // no-op
}

// A socket of the session that registers while CloseSession's closes are
// still in progress is closed too (its upgrade was in flight).
func TestCloseSessionAlsoClosesLateSockets(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	holder := h.dial(nil)
	holder.expect("welcome")
	h.gw.CloseSession(testSession, CloseSignedOut, "signed_out")
	// holder does not answer the close frame yet: its handler keeps the
	// session's slot for closeGrace, so the session's close is still on.
	late, rsp, err := h.tryDial(h.wsURL("", nil), nil)
	if err != nil {
		t.Fatalf("dial: %v %s", err, rspText(rsp))
	}
	late.expectClose(CloseSignedOut)
	holder.expectClose(CloseSignedOut)
}

// A TicketRedeemer failing for another reason than the ticket (its store
// is down) is answered 503 store_unavailable, not 401.
func TestRedeemerFailureIs503(t *testing.T) {
	h := newHarness(t, GatewayConfig{Tickets: failingRedeemer{}}, StreamConfig{})
	_, rsp, err := h.tryDial(h.wsURL("any", nil), nil)
	if err == nil {
		t.Fatal("dial succeeded")
	}
	if st, code, _ := httpError(t, rsp); st != http.StatusServiceUnavailable || code != "store_unavailable" {
		t.Fatalf("got %d %s, want 503 store_unavailable", st, code)
	}
}

type failingRedeemer struct{}

func (failingRedeemer) Redeem(context.Context, string) (Grant, error) {
	return Grant{}, errors.New("redis: connection refused")
}

// Issue 12, "invalid UTF-8 in a text frame is accepted": RFC 6455 requires
// closing with 1007.
func TestInvalidUTF8Closes1007(t *testing.T) {
	for _, payload := range []string{"\xff", "{\"type\":\"ping\",\"id\":\"\xc3\x28\"}", "{\"type\":\"ping\",\"id\":\"\xed\xa0\x80\"}"} {
		h := newHarness(t, GatewayConfig{}, StreamConfig{})
		c := h.dial(nil)
		c.expect("welcome")
		c.send(payload)
		c.expectClose(CloseInvalidPayload)
		eventually(t, "dropped metric", func() bool {
			return metric(t, h.reg, "finesse_relay_ws_dropped_connections_total", "reason", "invalid_payload") == 1
		})
	}
	// Valid multi-byte UTF-8 is fine.
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	c := h.dial(nil)
	c.expect("welcome")
	c.send(`{"type":"ping","id":"é€😀"}`)
	if m := c.expect("reply"); m.ID != "é€😀" {
		t.Fatalf("reply id %q", m.ID)
	}
}
