package sim

import (
	"slices"
	"time"

	"finesse-relay/xmpp/finesse"
)

// Dialog and participant states (finesse-protocol.md C.4).
const (
	dlgInitiating = "INITIATING"
	dlgAlerting   = "ALERTING"
	dlgActive     = "ACTIVE"
	dlgDropped    = "DROPPED"

	partInitiating = "INITIATING"
	partInitiated  = "INITIATED"
	partAlerting   = "ALERTING"
	partActive     = "ACTIVE"
	partHeld       = "HELD"
	partDropped    = "DROPPED"
	partWrapUp     = "WRAP_UP"
)

// Call types.
const (
	callACDIn    = "ACD_IN"
	callOut      = "OUT"
	callInside   = "AGENT_INSIDE"
	callConsult  = "CONSULT"
	callTransfer = "TRANSFER"
)

// Requested actions.
const (
	actAnswer      = "ANSWER"
	actHold        = "HOLD"
	actRetrieve    = "RETRIEVE"
	actDrop        = "DROP"
	actConsult     = "CONSULT_CALL"
	actTransfer    = "TRANSFER"
	actTransferSST = "TRANSFER_SST"
	actConference  = "CONFERENCE"
	actDTMF        = "SEND_DTMF"
	actUpdate      = "UPDATE_CALL_DATA"
	actMakeCall    = "MAKE_CALL"
)

// dialog is one call. Guarded by model.mu.
type dialog struct {
	id, uri      string
	callType     string
	from, to     string
	dialed, dnis string
	queue        *queue // the queue of an ACD call, nil otherwise
	vars         []finesse.CallVariable
	wrapUpReason string
	assoc        string // associatedDialogUri
	parts        []*participant
	state        string
	created      time.Time
	acd          bool // agents who talked on it wrap up afterwards

	consultOf *dialog // a consult call: the call it consults from
	consult   *dialog // an original call: its consult call
	consultBy *user   // who started the consult
	monitored *dialog // a supervisor's silent monitor call: the call it listens to (supervise.go)

	abandon *simTimer // a queued call hangs up when this fires
	ending  *simTimer // robot scenario: the customer hangs up
}

// participant is one party of a dialog. agent is nil for an outside party.
type participant struct {
	addr    string
	agent   *user
	state   string
	start   time.Time
	changed time.Time
	listed  bool // the dialog is in agent's Dialogs collection
	barged  bool // a supervisor who joined by BARGE_CALL: no wrap-up (supervise.go)
}

// live reports a party still on the call (or being called).
func (p *participant) live() bool {
	switch p.state {
	case partInitiating, partInitiated, partAlerting, partActive, partHeld:
		return true
	}
	return false
}

// connected reports a party in conversation (talking or held).
func (p *participant) connected() bool { return p.state == partActive || p.state == partHeld }

func (d *dialog) part(u *user) *participant {
	for _, p := range d.parts {
		if p.agent == u {
			return p
		}
	}
	return nil
}

func (d *dialog) liveCount() int {
	n := 0
	for _, p := range d.parts {
		if p.live() {
			n++
		}
	}
	return n
}

func (m *model) newDialog(callType, from, to string) *dialog {
	m.nextID++
	id := itoa(m.nextID)
	d := &dialog{
		id: id, uri: finesse.APIPrefix + "Dialog/" + id, callType: callType,
		from: from, to: to, created: m.now(),
	}
	m.dialogs[id] = d
	return d
}

func (m *model) addPart(d *dialog, addr string, agent *user, state string) *participant {
	now := m.now()
	p := &participant{addr: addr, agent: agent, state: state, start: now, changed: now}
	d.parts = append(d.parts, p)
	return p
}

func (m *model) setPart(p *participant, state string) {
	p.state = state
	p.changed = m.now()
}

// list adds d to agent's Dialogs collection (a Dialogs POST).
func (m *model) list(d *dialog, p *participant, reqID string) {
	if p.agent == nil || p.listed {
		return
	}
	p.listed = true
	p.agent.dialogs = append(p.agent.dialogs, d)
	m.publishDialogs(d, p.agent, finesse.EventPost, reqID)
}

// unlist removes d from u's collection (a Dialogs DELETE) and u from d's
// participants; d is forgotten once nobody lists it and nobody is left
// on it.
func (m *model) unlist(d *dialog, u *user, reqID string) {
	p := d.part(u)
	if p == nil {
		return
	}
	if p.listed {
		m.publishDialogs(d, u, finesse.EventDelete, reqID)
		p.listed = false
		u.dialogs = slices.DeleteFunc(u.dialogs, func(x *dialog) bool { return x == d })
	}
	d.parts = slices.DeleteFunc(d.parts, func(x *participant) bool { return x == p })
	m.forgetIfDone(d)
}

func (m *model) forgetIfDone(d *dialog) {
	if d.state != dlgDropped {
		return
	}
	for _, p := range d.parts {
		if p.listed {
			return
		}
	}
	m.tmr.stop(d.abandon)
	m.tmr.stop(d.ending)
	if d.consultOf != nil && d.consultOf.consult == d {
		d.consultOf.consult = nil
	}
	if d.consult != nil {
		d.consult.consultOf = nil
	}
	delete(m.dialogs, d.id)
}

// callState is the user state u's live participations imply: TALKING,
// HOLD, RESERVED, or "" when u is on no call.
func (m *model) callState(u *user) string {
	held, alerting := false, false
	for _, d := range u.dialogs {
		p := d.part(u)
		if p == nil {
			continue
		}
		switch p.state {
		case partActive, partInitiating, partInitiated:
			return stateTalking
		case partHeld:
			held = true
		case partAlerting:
			alerting = true
		}
	}
	switch {
	case held:
		return stateHold
	case alerting:
		return stateReserved
	}
	return ""
}

// syncAgent brings u's agent state in line with its calls: a call state
// while on a call, then wrap-up, the pending state or the state before the
// call once the last call ends.
func (m *model) syncAgent(u *user, reqID string) {
	cs := m.callState(u)
	if cs != "" {
		if cs != u.state {
			m.setState(u, cs, reasonNone, reqID)
		}
		return
	}
	if !inCall(u.state) {
		return
	}
	wrap := false
	for _, d := range append([]*dialog(nil), u.dialogs...) {
		p := d.part(u)
		switch {
		case p == nil:
		case p.state == partWrapUp:
			wrap = true
		case !p.live():
			m.unlist(d, u, reqID)
		}
	}
	switch {
	case u.pending == stateLogout:
		reason := u.pendReason
		m.leaveWrapUp(u, reqID)
		m.setState(u, stateLogout, reason, reqID)
	case wrap:
		m.startWrapUp(u, reqID)
	case u.pending != "":
		state, reason := u.pending, u.pendReason
		u.pending, u.pendReason = "", ""
		m.setState(u, state, reason, reqID)
	default:
		state, reason := u.before, u.beforeReason
		if state == "" || inCall(state) {
			state, reason = stateNotReady, reasonNone
		}
		m.setState(u, state, reason, reqID)
	}
}

// leave takes p off d: WRAP_UP for an agent who talked on an ACD call,
// DROPPED otherwise. If fewer than two parties remain the call ends for
// everyone. Events: one Dialog PUT to every listed agent, then Dialogs
// DELETEs for agents who dropped without wrap-up, then agent states.
func (m *model) leave(d *dialog, p *participant, reqID string) {
	m.dropParty(d, p)
	if d.liveCount() < 2 {
		for _, q := range d.parts {
			if q.live() {
				m.dropParty(d, q)
			}
		}
		d.state = dlgDropped
		m.tmr.stop(d.ending)
	}
	m.publishDialog(d, reqID)
	m.settle(d, reqID)
}

// dropParty marks one party as gone (no events).
func (m *model) dropParty(d *dialog, p *participant) {
	if p.agent != nil && d.acd && p.connected() && !p.barged {
		m.setPart(p, partWrapUp)
		return
	}
	m.setPart(p, partDropped)
}

// settle unlists dropped agents and syncs every agent of d.
func (m *model) settle(d *dialog, reqID string) {
	agents := make([]*user, 0, len(d.parts))
	for _, p := range d.parts {
		if p.agent != nil {
			agents = append(agents, p.agent)
		}
	}
	for _, u := range agents {
		if p := d.part(u); p != nil && p.state == partDropped {
			m.unlist(d, u, reqID)
		}
	}
	for _, u := range agents {
		m.syncAgent(u, reqID)
	}
	m.endMonitors(d, reqID)
	m.forgetIfDone(d)
}

// --- inbound ACD calls --------------------------------------------------

// placeCall creates an inbound call into q and routes or queues it.
func (m *model) placeCall(q *queue, from string, vars []finesse.CallVariable) *dialog {
	dialed := itoa(dialedNumberStart + int(q.id[len(q.id)-1]-'0'))
	d := m.newDialog(callACDIn, from, dialed)
	d.queue, d.acd, d.dialed, d.vars = q, true, dialed, vars
	d.state = dlgAlerting
	m.addPart(d, from, nil, partInitiated)
	m.enqueue(d, false)
	m.routeCalls()
	return d
}

func (m *model) enqueue(d *dialog, front bool) {
	q := d.queue
	if front {
		q.waiting = append([]*dialog{d}, q.waiting...)
	} else {
		q.waiting = append(q.waiting, d)
	}
	if d.abandon == nil {
		d.abandon = m.tmr.after(m.t.abandon, func() {
			d.abandon = nil
			if i := slices.Index(q.waiting, d); i >= 0 {
				q.waiting = slices.Delete(q.waiting, i, i+1)
				d.state = dlgDropped
				m.forgetIfDone(d)
			}
		})
	}
}

// routeCalls offers waiting calls, oldest first, to the agents READY the
// longest.
func (m *model) routeCalls() {
	for {
		var oldest *queue
		for _, q := range m.queues {
			if len(q.waiting) > 0 && (oldest == nil || q.waiting[0].created.Before(oldest.waiting[0].created)) {
				oldest = q
			}
		}
		if oldest == nil {
			return
		}
		agent := m.longestReady()
		if agent == nil {
			return
		}
		d := oldest.waiting[0]
		oldest.waiting = oldest.waiting[1:]
		m.tmr.stop(d.abandon)
		d.abandon = nil
		m.offer(d, agent, "")
	}
}

func (m *model) longestReady() *user {
	var best *user
	for _, u := range m.agents {
		if u.state == stateReady && len(u.dialogs) == 0 && (best == nil || u.readyAt.Before(best.readyAt)) {
			best = u
		}
	}
	return best
}

// offer rings agent with d (agent participant first, as Finesse lists it).
func (m *model) offer(d *dialog, agent *user, reqID string) {
	now := m.now()
	p := &participant{addr: agent.ext, agent: agent, state: partAlerting, start: now, changed: now}
	d.parts = append([]*participant{p}, d.parts...)
	d.to, d.dnis = agent.ext, agent.ext
	d.state = dlgAlerting
	m.list(d, p, reqID)
	m.syncAgent(agent, reqID)
	m.startRONA(d, p)
}

// withdrawOffer takes a ringing ACD call away from agent and puts it back
// at the head of its queue (supervisor or forced logout while RESERVED).
func (m *model) withdrawOffer(d *dialog, agent *user, reqID string) {
	p := d.part(agent)
	if d.queue == nil || !neverAnswered(d, p) {
		m.leave(d, p, reqID)
		return
	}
	m.setPart(p, partDropped)
	m.publishDialog(d, reqID)
	m.unlist(d, agent, reqID)
	d.state = dlgAlerting
	m.enqueue(d, true)
}

// neverAnswered: besides p, d holds only the caller, still INITIATED.
func neverAnswered(d *dialog, p *participant) bool {
	for _, q := range d.parts {
		if q != p && (q.agent != nil || q.state != partInitiated) {
			return false
		}
	}
	return true
}

// --- actions ------------------------------------------------------------

// actions lists what p may do now (C.4 table; F.2/F.3 order).
func (m *model) actions(d *dialog, p *participant) []string {
	if p.agent == nil {
		if p.live() {
			return []string{actUpdate, actDrop}
		}
		return nil
	}
	if a, ok := m.superviseActions(d, p); ok {
		return a
	}
	xfer := m.transferReady(d, p.agent)
	switch p.state {
	case partAlerting:
		return []string{actAnswer}
	case partActive:
		a := []string{actHold, actDrop, actUpdate}
		if d.consultOf == nil && d.consult == nil && d.liveCount() == 2 {
			a = append(a, actConsult, actTransferSST)
		}
		a = append(a, actDTMF)
		if xfer {
			a = append(a, actTransfer, actConference)
		}
		return a
	case partHeld:
		a := []string{actRetrieve, actDrop, actUpdate}
		if xfer {
			a = append(a, actTransfer, actConference)
		}
		return a
	case partInitiating, partInitiated:
		return []string{actDrop, actUpdate}
	case partWrapUp:
		return []string{actUpdate}
	}
	return nil
}

// pairOf returns the original call and its consult call for d, if d is
// one of a consult pair.
func pairOf(d *dialog) (orig, cons *dialog) {
	switch {
	case d.consultOf != nil:
		return d.consultOf, d
	case d.consult != nil:
		return d, d.consult
	}
	return nil, nil
}

// transferReady: u started a consult that was answered while the original
// call is on hold, so TRANSFER and CONFERENCE are possible.
func (m *model) transferReady(d *dialog, u *user) bool {
	orig, cons := pairOf(d)
	if orig == nil || cons.consultBy != u || cons.state != dlgActive {
		return false
	}
	po, pc := orig.part(u), cons.part(u)
	return po != nil && pc != nil && po.state == partHeld && pc.state == partActive
}

func (m *model) allowed(d *dialog, p *participant, action string) bool {
	return slices.Contains(m.actions(d, p), action)
}
