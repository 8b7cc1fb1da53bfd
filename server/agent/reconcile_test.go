package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"finesse-relay/xmpp/finesse"
)

func TestRequestNode(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/finesse/api/User/1001", finesse.UserNode("1001")},
		{"User/1001", finesse.UserNode("1001")},
		{"/finesse/api/User/1001/Dialogs", finesse.DialogsNode("1001")},
		{"/finesse/api/Dialog/16817001", finesse.DialogsNode("1001")},
		{"/finesse/api/User/1001/Media/2", finesse.MediaNode("1001", "2")},
		{"/finesse/api/User/1002", ""}, // another user: not this Session's node
		{"/finesse/api/User/1002/Dialogs", ""},
		{"/finesse/api/Team/10", ""},
		{"/finesse/api/Dialog/", ""},
		{"/finesse/api/User/1001/ReasonCodes", ""},
	}
	for _, tt := range tests {
		if got := requestNode("1001", tt.path); got != tt.want {
			t.Errorf("requestNode(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestPendingRequestsBoundsAndTTL(t *testing.T) {
	now := time.Unix(0, 0)
	p := newPendingRequests(func() time.Time { return now })
	for i := range maxPending + 10 {
		now = now.Add(time.Millisecond)
		p.note("r"+string(rune('A'+i/26))+string(rune('a'+i%26)), "n")
	}
	if n := p.len(); n != maxPending {
		t.Fatalf("len = %d, want the bound %d", n, maxPending)
	}
	got := p.takeBefore(now.Add(time.Second))
	if len(got) != maxPending || got[0].id != "rAk" { // the 10 oldest were forgotten
		t.Fatalf("took %d, first %q", len(got), got[0].id)
	}
	p.note("old", "n")
	now = now.Add(pendingTTL)
	p.note("new", "n")
	p.resolve("gone")
	if got := p.takeBefore(now.Add(time.Second)); len(got) != 1 || got[0].id != "new" {
		t.Fatalf("after the TTL: %+v", got)
	}
}

// reconciled returns the reconciled calls, in order.
func reconciled(cs []pubCall) []pubCall {
	return slices.DeleteFunc(slices.Clone(cs), func(c pubCall) bool { return c.kind != "reconciled" })
}

func countStatus(cs []pubCall, status string) int {
	n := 0
	for _, c := range cs {
		if c.kind == "status" && c.status == status {
			n++
		}
	}
	return n
}

// Issue 12, hole 4: requests Finesse accepted while the relay's upstream
// session was down must still get an answer after the reconnect.
func TestRequestsAcceptedWhileDownAreReconciledAfterReconnect(t *testing.T) {
	r := newRig(t, agent1001, func(c *Config) { c.Sides = []string{"A"} })
	s, _, _ := r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up", hasStatus(StatusUp, "A"))

	// While up: one request answered by its notification, one whose
	// notification is lost with the connection.
	s.NoteRequest("answered", "/finesse/api/User/1001")
	n.req.OnUpdate(update(finesse.UserNode("1001"), "PUT", finesse.UserNode("1001"), "answered", "<user><loginId>1001</loginId><state>NOT_READY</state></user>"))
	s.NoteRequest("lost-in-drop", "/finesse/api/User/1001")

	gate := make(chan struct{})
	r.up.mu.Lock()
	r.up.gate = gate
	r.up.user.State = "READY"
	r.up.dialogs = []finesse.Dialog{{ID: "d1", State: "ACTIVE"}}
	r.up.mu.Unlock()
	n.stop <- errors.New("stream closed by peer")
	pub.waitFor(t, "reconnecting", hasStatus(StatusReconnecting, "A"))
	// The gap: Finesse accepts requests, the relay has no XMPP session.
	s.NoteRequest("gap-user", "/finesse/api/User/1001")
	s.NoteRequest("gap-dialog", "/finesse/api/Dialog/d1")
	s.NoteRequest("other-agent", "/finesse/api/User/1002") // not this Session's node: not tracked
	close(gate)
	n2 := r.up.waitDial(t)
	calls := pub.waitFor(t, "up again", func(cs []pubCall) bool { return countStatus(cs, StatusUp) == 2 })

	rec := reconciled(calls)
	var ids []string
	for _, c := range rec {
		ids = append(ids, c.requestID)
	}
	if !slices.Equal(ids, []string{"lost-in-drop", "gap-user", "gap-dialog"}) {
		t.Fatalf("reconciled %v, want lost-in-drop, gap-user, gap-dialog (in order)", ids)
	}
	if u, ok := rec[1].data.(*finesse.User); !ok || rec[1].node != finesse.UserNode("1001") || u.State != "READY" {
		t.Errorf("gap-user: node %s data %#v, want the User snapshot (READY)", rec[1].node, rec[1].data)
	}
	if d, ok := rec[2].data.([]finesse.Dialog); !ok || rec[2].node != finesse.DialogsNode("1001") || len(d) != 1 || d[0].State != "ACTIVE" {
		t.Errorf("gap-dialog: node %s data %#v, want the Dialogs snapshot", rec[2].node, rec[2].data)
	}
	// After the second snapshot's states, before the second "up".
	iRec := slices.IndexFunc(calls, func(c pubCall) bool { return c.kind == "reconciled" })
	iUp2, iState2, ups := -1, -1, 0
	for i, c := range calls {
		if c.kind == "status" && c.status == StatusUp {
			if ups++; ups == 2 {
				iUp2 = i
				break
			}
		}
		if c.kind == "state" {
			iState2 = i
		}
	}
	if !(iState2 < iRec && iRec < iUp2) {
		t.Errorf("order: last snapshot state %d, first reconciled %d, second up %d", iState2, iRec, iUp2)
	}
	// The live session's own requests are not reconciled by a later snapshot.
	s.NoteRequest("live", "/finesse/api/User/1001")
	n2.req.OnServicePresence(false)
	n2.req.OnServicePresence(true)
	pub.waitFor(t, "up a third time", func(cs []pubCall) bool { return countStatus(cs, StatusUp) == 3 })
	if got := reconciled(pub.snapshot()); len(got) != 3 {
		t.Fatalf("a request accepted while the session was up was reconciled: %+v", got[3:])
	}
}

// Issue 12, hole 4 as reproduced: side A out of service, side B accepts
// state changes before the relay's session on B is up.
func TestRequestsAcceptedDuringFailoverAreReconciled(t *testing.T) {
	r := newRig(t, agent1001, nil)
	s, _, _ := r.m.Join(&agent1001, password("1001"))
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "up on A", hasStatus(StatusUp, "A"))

	gate := make(chan struct{})
	r.up.mu.Lock()
	r.up.gate = gate
	r.up.user.State = "READY"
	r.up.mu.Unlock()
	r.up.setStatus("A", "OUT_OF_SERVICE")
	n.req.OnUpdate(update(finesse.SystemInfoNode, "PUT", finesse.SystemInfoNode, "", "<systemInfo><status>OUT_OF_SERVICE</status></systemInfo>"))
	pub.waitFor(t, "failover to B", hasStatus(StatusFailover, "B"))
	var want []string
	for i := range 20 {
		id := "b-" + string(rune('a'+i))
		want = append(want, id)
		s.NoteRequest(id, "/finesse/api/User/1001")
	}
	close(gate)
	calls := pub.waitFor(t, "up on B", hasStatus(StatusUp, "B"))
	var got []string
	for _, c := range reconciled(calls) {
		got = append(got, c.requestID)
		if u, ok := c.data.(*finesse.User); !ok || u.State != "READY" {
			t.Fatalf("%s: data %#v, want side B's User snapshot", c.requestID, c.data)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("reconciled %v, want every requestId of the gap %v", got, want)
	}
	if s.pending.len() != 0 {
		t.Fatalf("%d requests still pending", s.pending.len())
	}
}

// FuzzRequestNode: any path maps to no node or to one of the loginId's own
// nodes, never to another user's, and never panics.
func FuzzRequestNode(f *testing.F) {
	for _, p := range []string{"/finesse/api/User/1001", "User/1001/Dialogs", "/finesse/api/Dialog/1", "User/1001/Media/2", "User/1002", "//", "User//Media/", "Dialog"} {
		f.Add("1001", p)
	}
	f.Fuzz(func(t *testing.T, loginID, path string) {
		node := requestNode(loginID, path)
		if node == "" {
			return
		}
		if loginID == "" || !strings.HasPrefix(node, finesse.UserNode(loginID)) {
			t.Fatalf("requestNode(%q, %q) = %q: not a node of that user", loginID, path, node)
		}
	})
}
