package gadget

import (
	"encoding/json"
	"testing"
	"time"
)

func TestReconciledEvent(t *testing.T) {
	h := newHarness(t, GatewayConfig{}, StreamConfig{})
	node := "/finesse/api/User/1001"
	h.stream.State(node, userData{LoginID: "1001", State: "READY"})
	c := h.dial(nil)
	w := c.expect("welcome")
	c.expect("state")

	h.stream.ReconciledEvent(node, "web-7", userData{LoginID: "1001", State: "READY"})
	h.stream.Event(node, "PUT", node, "web-8", userData{LoginID: "1001", State: "NOT_READY"}, nil)

	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, err := c.ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("frame %s: %v", raw, err)
	}
	want := map[string]any{
		"type": "event", "seq": float64(w.seq(t) + 1), "node": node, "event": "PUT", "source": node,
		"requestId": "web-7", "reconciled": true, "data": map[string]any{"loginId": "1001", "state": "READY"},
	}
	if g, _ := json.Marshal(got); string(g) != mustJSON(t, want) {
		t.Fatalf("reconciled frame\n got %s\nwant %s", g, mustJSON(t, want))
	}
	_, raw, err = c.ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var plain map[string]any
	_ = json.Unmarshal(raw, &plain)
	if _, ok := plain["reconciled"]; ok || plain["requestId"] != "web-8" {
		t.Fatalf("an ordinary event must not carry reconciled: %s", raw)
	}

	// A resume replays it, flag included.
	r := h.dial(since(w.seq(t)))
	if m := r.expect("welcome"); !m.Resumed {
		t.Fatal("not resumed")
	}
	_ = r.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, _ = r.ws.ReadMessage()
	var replayed struct {
		RequestID  string `json:"requestId"`
		Reconciled bool   `json:"reconciled"`
	}
	if err := json.Unmarshal(raw, &replayed); err != nil || replayed.RequestID != "web-7" || !replayed.Reconciled {
		t.Fatalf("replayed %s", raw)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
