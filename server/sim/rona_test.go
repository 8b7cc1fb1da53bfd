package sim

import (
	"testing"
	"time"

	"finesse-relay/xmpp/finesse"
)

func TestRingNoAnswer(t *testing.T) {
	const rona = 300 * time.Millisecond
	tests := []struct {
		name     string
		answerIn time.Duration // <0: never answer
		wantRONA bool
	}{
		{"unanswered call goes back to the queue and the agent becomes NOT_READY", -1, true},
		{"answered in time: no RONA", 50 * time.Millisecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{RONATimeout: rona})
			e.ready("1001")
			e.flush()
			var id string
			start := time.Now()
			e.do(func(m *model) { id = m.placeCall(m.queue("5001"), "5551234567", nil).id })
			a := e.sides[sideA]
			a.waitFor(t, wait, "the offer", onNode(finesse.DialogsNode("1001"), finesse.EventPost))
			if tc.answerIn >= 0 {
				time.Sleep(tc.answerIn)
				e.must(202, "PUT", "/finesse/api/Dialog/"+id, "1001:demo", actionBody("ANSWER", "51001"))
				e.waitState("1001", stateTalking, wait)
				a.none(t, 2*rona, "a RONA NOT_READY", userState("1001", stateNotReady))
				return
			}
			u := a.waitFor(t, wait, "NOT_READY after RONA", userState("1001", stateNotReady))
			if el := time.Since(start); el < rona {
				t.Errorf("RONA after %v, want >= %v", el, rona)
			}
			x, err := finesse.ParseUser(u.Data)
			if err != nil {
				t.Fatal(err)
			}
			if x.ReasonCodeID != reasonRONA || x.ReasonCode == nil || x.ReasonCode.Label != "Call Not Answered" {
				t.Errorf("RONA user: reasonCodeId %q reasonCode %+v, want 32767 Call Not Answered", x.ReasonCodeID, x.ReasonCode)
			}
			a.waitFor(t, wait, "the offer withdrawn", onNode(finesse.DialogsNode("1001"), finesse.EventDelete))
			e.do(func(m *model) {
				q := m.queue("5001")
				if len(q.waiting) != 1 || q.waiting[0].id != id {
					t.Errorf("queue 5001 holds %d calls, want the RONA call back at its head", len(q.waiting))
				}
			})
			// The next READY agent gets it.
			e.ready("1002")
			a.waitFor(t, wait, "re-offered to 1002", onNode(finesse.DialogsNode("1002"), finesse.EventPost))
		})
	}
}

func TestRONADisabled(t *testing.T) {
	e := newEnv(t, Config{RONATimeout: -1})
	e.do(func(m *model) {
		if m.t.rona > 0 {
			t.Errorf("rona %v with RONATimeout -1", m.t.rona)
		}
	})
	def := newEnv(t, Config{})
	def.do(func(m *model) {
		if m.t.rona != defaultRONA {
			t.Errorf("default rona %v, want %v", m.t.rona, defaultRONA)
		}
	})
}
