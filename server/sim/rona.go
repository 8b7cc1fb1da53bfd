package sim

import "time"

// Ring no answer (RONA). CUCM and CCE take a routed call away from an
// agent who lets it ring: after the agent desk setting's ring-no-answer
// time the call is re-queued (here: at the head of its queue, routed again
// at once) and the agent is made NOT_READY with UCCE's system reason code
// 32767, so that the next call does not ring on an absent agent.

// defaultRONA is the ring-no-answer time when Config.RONATimeout is zero.
const defaultRONA = 15 * time.Second

// reasonRONA is the reason code id of a RONA NOT_READY (UCCE: 32767).
const reasonRONA = "32767"

// startRONA arms p's ring-no-answer timer for the offered ACD call d.
func (m *model) startRONA(d *dialog, p *participant) {
	if m.t.rona <= 0 || p.agent == nil || d.queue == nil {
		return
	}
	agent := p.agent
	m.tmr.after(m.t.rona, func() {
		if m.dialogs[d.id] != d || d.part(agent) != p || p.state != partAlerting {
			return // answered, withdrawn or gone meanwhile
		}
		m.ringNoAnswer(d, agent)
	})
}

// ringNoAnswer re-queues d and makes agent NOT_READY (RONA).
func (m *model) ringNoAnswer(d *dialog, agent *user) {
	m.withdrawOffer(d, agent, "")
	if inCall(m.callState(agent)) {
		// Still on another call: NOT_READY once it ends.
		agent.pending, agent.pendReason = stateNotReady, reasonRONA
		m.republish(agent, "")
	} else {
		m.leaveWrapUp(agent, "")
		m.setState(agent, stateNotReady, reasonRONA, "")
	}
	m.routeCalls()
}
