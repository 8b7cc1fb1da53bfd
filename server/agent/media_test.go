package agent

import (
	"slices"
	"testing"

	"finesse-relay/xmpp/finesse"
)

// Nonvoice dialogs arrive on the user's Dialogs/Media node with the MRD's
// collection as source (Cisco's Dialogs/Media notification): a POST adds to
// the node's list, an item PUT updates the member, a DELETE removes it; none
// replaces the list.
func TestMediaDialogsAreMergedNotReplaced(t *testing.T) {
	r := newRig(t, agent1001, nil)
	if _, _, err := r.m.Join(&agent1001, password("1001")); err != nil {
		t.Fatal(err)
	}
	pub := <-r.pubs
	n := r.up.waitDial(t)
	pub.waitFor(t, "status up", hasStatus(StatusUp, "A"))

	node := finesse.MediaDialogsNode("1001")
	src := finesse.MRDDialogsURI("1001", "5002")
	n.req.OnUpdate(update(node, "POST", src, "", "<dialogs><Dialog><id>1_1_1</id><state>OFFERED</state><mediaType>chat</mediaType></Dialog></dialogs>"))
	n.req.OnUpdate(update(node, "POST", src, "", "<dialogs><Dialog><id>2_2_2</id><state>OFFERED</state><mediaType>chat</mediaType></Dialog></dialogs>"))
	n.req.OnUpdate(update(node, "PUT", finesse.DialogURI("1_1_1"), "r1", "<dialog><id>1_1_1</id><state>ACTIVE</state><mediaType>chat</mediaType></dialog>"))
	n.req.OnUpdate(update(node, "DELETE", src, "", "<dialogs><Dialog><id>2_2_2</id><state>CLOSED</state></Dialog></dialogs>"))
	calls := pub.waitFor(t, "four events", func(cs []pubCall) bool {
		return len(slices.DeleteFunc(slices.Clone(cs), func(c pubCall) bool { return c.kind != "event" })) == 4
	})
	var states [][]finesse.Dialog
	for _, c := range calls {
		if c.kind != "event" {
			continue
		}
		d, ok := c.state.([]finesse.Dialog)
		if !ok {
			t.Fatalf("event state on %s is %T, want a dialog list", c.node, c.state)
		}
		states = append(states, d)
	}
	ids := func(ds []finesse.Dialog) (out []string) {
		for _, d := range ds {
			out = append(out, d.ID+":"+d.State)
		}
		return out
	}
	want := [][]string{{"1_1_1:OFFERED"}, {"1_1_1:OFFERED", "2_2_2:OFFERED"}, {"1_1_1:ACTIVE", "2_2_2:OFFERED"}, {"1_1_1:ACTIVE"}}
	for i, w := range want {
		if got := ids(states[i]); !slices.Equal(got, w) {
			t.Errorf("after event %d the list is %v, want %v", i+1, got, w)
		}
	}
}

// A deployment without the nonvoice node (UCCX) still comes up: the
// Dialogs/Media subscription is best effort.
func TestSessionUpWithoutNonvoiceNode(t *testing.T) {
	r := newRig(t, agent1001, nil)
	r.up.mu.Lock()
	r.up.refuseSub = finesse.MediaDialogsNode("1001")
	r.up.mu.Unlock()
	if _, _, err := r.m.Join(&agent1001, password("1001")); err != nil {
		t.Fatal(err)
	}
	pub := <-r.pubs
	r.up.waitDial(t)
	pub.waitFor(t, "status up", hasStatus(StatusUp, "A"))
}
