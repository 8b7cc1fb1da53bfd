package sim

import (
	"slices"
	"strings"

	"finesse-relay/xmpp/finesse"
)

// dialogRequest is a PUT /Dialog/{id} or POST /User/{id}/Dialogs request.
type dialogRequest struct {
	Action       string
	Target       string // targetMediaAddress
	From, To     string
	DTMF         string
	HasDTMF      bool
	WrapUpReason *string
	Vars         []finesse.CallVariable
}

// Limits on request values.
const (
	maxAddressLen   = 32
	maxDTMFLen      = 32
	maxWrapUpLen    = 39
	maxVarValueLen  = 40
	maxVarsInUpdate = 20
)

var knownActions = []string{actAnswer, actHold, actRetrieve, actDrop, actConsult, actTransfer, actTransferSST, actConference, actDTMF, actUpdate, actParticipantDrop}

// Actions Finesse knows but the simulator does not implement.
var unsupportedActions = []string{"START_RECORDING", "ACCEPT", "CLOSE", "REJECT", "RECLASSIFY", "UPDATE_SCHEDULED_CALLBACK", "CANCEL_SCHEDULED_CALLBACK", "DTMF"}

// validAddress accepts what a phone could dial: digits with an optional
// leading +.
func validAddress(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > maxAddressLen {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validDTMF(s string) bool {
	if s == "" || len(s) > maxDTMFLen {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '*' || c == '#' || c >= 'A' && c <= 'D') {
			return false
		}
	}
	return true
}

func validVarName(s string) bool {
	if strings.HasPrefix(s, "user.") {
		return len(s) > 5 && len(s) <= 40
	}
	if n, ok := strings.CutPrefix(s, "callVariable"); ok {
		switch n {
		case "1", "2", "3", "4", "5", "6", "7", "8", "9", "10":
			return true
		}
	}
	return false
}

func checkCallData(r dialogRequest) *restError {
	if r.WrapUpReason == nil && len(r.Vars) == 0 {
		return errMissing("mediaProperties")
	}
	if r.WrapUpReason != nil && len(*r.WrapUpReason) > maxWrapUpLen {
		return errInput("wrapUpReason", "longer than 39 characters")
	}
	if len(r.Vars) > maxVarsInUpdate {
		return errInput("callvariables", "too many call variables")
	}
	for _, v := range r.Vars {
		if !validVarName(v.Name) {
			return errInput("callvariables", "unknown call variable "+v.Name)
		}
		if len(v.Value) > maxVarValueLen {
			return errInput("callvariables", v.Name+" is longer than 40 characters")
		}
	}
	return nil
}

// checkDialogAction validates a PUT /Dialog/{id} by u synchronously.
func (m *model) checkDialogAction(u *user, d *dialog, r dialogRequest) *restError {
	switch {
	case r.Action == "":
		return errMissing("requestedAction")
	case slices.Contains(unsupportedActions, r.Action):
		return errInput("requestedAction", r.Action+" is not supported by the simulator")
	case !slices.Contains(knownActions, r.Action):
		return errInput("requestedAction", "unknown requestedAction "+r.Action)
	}
	p := d.part(u)
	if p == nil || !p.listed {
		return errState("", "user "+u.id+" is not a participant of dialog "+d.id)
	}
	if r.Action != actUpdate {
		if r.Target == "" {
			return errMissing("targetMediaAddress")
		}
		if r.Target != u.ext {
			return errInput("targetMediaAddress", r.Target+" is not the extension of user "+u.id)
		}
	}
	if !m.allowed(d, p, r.Action) {
		return &restError{status: 400, typ: "Invalid State", msg: r.Action + " is not allowed for a participant in state " + p.state, data: r.Action}
	}
	switch r.Action {
	case actConsult, actTransferSST:
		if r.To == "" {
			return errMissing("toAddress")
		}
		if !validAddress(r.To) || r.To == u.ext {
			return errInput("toAddress", "not a valid destination")
		}
	case actDTMF:
		if !r.HasDTMF {
			return errMissing("dtmfString")
		}
		if !validDTMF(r.DTMF) {
			return errInput("dtmfString", "DTMF digits are 0-9 * # A-D, at most 32")
		}
	case actUpdate:
		return checkCallData(r)
	case actRetrieve:
		for _, o := range u.dialogs {
			if q := o.part(u); o != d && q != nil && (q.state == partActive || q.state == partInitiated || q.state == partInitiating) {
				return errState("", "retrieve while another call is active")
			}
		}
	}
	return nil
}

// checkMakeCall validates POST /User/{id}/Dialogs by u.
func (m *model) checkMakeCall(u *user, r dialogRequest) *restError {
	switch {
	case r.Action == "":
		return errMissing("requestedAction")
	case r.Action != actMakeCall:
		return errInput("requestedAction", "POST on Dialogs supports MAKE_CALL only")
	case r.From == "":
		return errMissing("fromAddress")
	case r.To == "":
		return errMissing("toAddress")
	case r.From != u.ext:
		return errInput("fromAddress", r.From+" is not the extension of user "+u.id)
	case !validAddress(r.To) || r.To == u.ext:
		return errInput("toAddress", "not a valid destination")
	case len(r.Vars) > 0:
		if e := checkCallData(dialogRequest{Vars: r.Vars}); e != nil {
			return e
		}
	}
	if u.state != stateNotReady && u.state != stateReady {
		return errState(u.state, "MAKE_CALL")
	}
	return nil
}

// ctiError is the asynchronous Call Operation Failure (F.7).
func ctiError(msg, code string) finesse.APIError {
	return finesse.APIError{ErrorType: "Call Operation Failure", ErrorMessage: msg, ErrorData: code}
}

// resolve finds who toAddress reaches: an agent, an outside number, or a
// CTI failure.
func (m *model) resolve(addr string) (agent *user, err *finesse.APIError) {
	if a := m.byExt[addr]; a != nil {
		switch {
		case !a.loggedIn():
			e := ctiError("CF_RESOURCE_OUT_OF_SERVICE", "34")
			return nil, &e
		case m.callState(a) != "":
			e := ctiError("CF_RESOURCE_BUSY", "36")
			return nil, &e
		}
		return a, nil
	}
	if len(addr) == 5 && addr[0] == '5' {
		e := ctiError("CF_INVALID_DESTINATION", "27")
		return nil, &e
	}
	return nil, nil
}

// applyDialogAction performs a validated action after the CTI delay;
// failures become asynchronous apiErrors on u's Dialogs node.
func (m *model) applyDialogAction(u *user, d *dialog, r dialogRequest, reqID string) {
	fail := func(e finesse.APIError) {
		m.publishAPIError(finesse.DialogsNode(u.id), d.uri, reqID, e)
	}
	if _, ok := m.dialogs[d.id]; !ok {
		fail(ctiError("CF_INVALID_CALLID_SPECIFIED", "9"))
		return
	}
	if e := m.checkDialogAction(u, d, r); e != nil {
		fail(ctiError("CF_INVALID_OBJECT_STATE", "26"))
		return
	}
	p := d.part(u)
	switch r.Action {
	case actAnswer:
		m.answer(d, p, reqID)
	case actHold:
		m.setPart(p, partHeld)
		m.publishDialog(d, reqID)
		m.syncAgent(u, reqID)
	case actRetrieve:
		m.setPart(p, partActive)
		m.publishDialog(d, reqID)
		m.syncAgent(u, reqID)
	case actDrop:
		m.leave(d, p, reqID)
		m.refreshPair(d, reqID)
	case actDTMF:
		m.publishDialog(d, reqID)
	case actUpdate:
		if r.WrapUpReason != nil {
			d.wrapUpReason = *r.WrapUpReason
		}
		for _, v := range r.Vars {
			setVar(d, v)
		}
		m.publishDialog(d, reqID)
	case actConsult:
		target, err := m.resolve(r.To)
		if err != nil {
			fail(*err)
			return
		}
		m.consult(u, d, p, r.To, target, reqID)
	case actTransferSST:
		target, err := m.resolve(r.To)
		if err != nil {
			fail(*err)
			return
		}
		m.singleStepTransfer(u, d, p, target, reqID)
	case actTransfer, actConference:
		m.completeConsult(u, d, r.Action == actConference, reqID)
	}
}

func setVar(d *dialog, v finesse.CallVariable) {
	for i := range d.vars {
		if d.vars[i].Name == v.Name {
			d.vars[i].Value = v.Value
			return
		}
	}
	d.vars = append(d.vars, v)
}

// answer connects p: every party still being called or calling becomes
// ACTIVE.
func (m *model) answer(d *dialog, p *participant, reqID string) {
	m.setPart(p, partActive)
	for _, q := range d.parts {
		if q.state == partInitiated || q.state == partInitiating {
			m.setPart(q, partActive)
		}
	}
	d.state = dlgActive
	m.publishDialog(d, reqID)
	for _, q := range d.parts {
		if q.agent != nil {
			m.syncAgent(q.agent, reqID)
		}
	}
	m.refreshPair(d, reqID)
	if p.agent != nil {
		m.robotAnswered(p.agent, d)
	}
}

// refreshPair republishes the other call of a consult pair, whose
// participants' actions (TRANSFER, CONFERENCE) depend on this one.
func (m *model) refreshPair(d *dialog, reqID string) {
	if d.consultOf != nil {
		if _, ok := m.dialogs[d.consultOf.id]; ok {
			m.publishDialog(d.consultOf, reqID)
		}
	}
}

// makeCall starts an outbound call from u (MAKE_CALL).
func (m *model) makeCall(u *user, r dialogRequest, reqID string) {
	target, err := m.resolve(r.To)
	if err != nil {
		m.publishAPIError(finesse.DialogsNode(u.id), finesse.DialogsNode(u.id), reqID, *err)
		return
	}
	if e := m.checkMakeCall(u, r); e != nil {
		m.publishAPIError(finesse.DialogsNode(u.id), finesse.DialogsNode(u.id), reqID, ctiError("CF_INVALID_OBJECT_STATE", "26"))
		return
	}
	ct := callOut
	if target != nil {
		ct = callInside
	}
	d := m.newDialog(ct, u.ext, r.To)
	d.dialed, d.vars = r.To, r.Vars
	d.state = dlgInitiating
	pu := m.addPart(d, u.ext, u, partInitiating)
	m.list(d, pu, reqID)
	m.syncAgent(u, reqID)
	m.tmr.after(m.t.cti, func() {
		if d.state != dlgInitiating || pu.state != partInitiating {
			return
		}
		m.setPart(pu, partInitiated)
		m.ring(d, r.To, target, reqID)
	})
}

// ring adds the destination to d, alerting: an agent rings (and a robot
// answers), an outside number answers by itself after the ring time.
func (m *model) ring(d *dialog, addr string, target *user, reqID string) {
	d.state = dlgAlerting
	pt := m.addPart(d, addr, target, partAlerting)
	m.publishDialog(d, reqID)
	if target != nil {
		m.list(d, pt, reqID)
		m.syncAgent(target, reqID)
		return
	}
	m.tmr.after(m.t.ring, func() {
		if pt.state == partAlerting {
			m.answer(d, pt, "")
		}
	})
}

// consult puts d on hold for u and calls to from u (CONSULT_CALL).
func (m *model) consult(u *user, d *dialog, p *participant, to string, target *user, reqID string) {
	m.setPart(p, partHeld)
	c := m.newDialog(callConsult, u.ext, to)
	c.assoc, c.consultOf, c.consultBy, c.dialed = d.uri, d, u, to
	c.vars = slices.Clone(d.vars)
	d.consult = c
	c.state = dlgInitiating
	pu := m.addPart(c, u.ext, u, partInitiated)
	m.publishDialog(d, reqID)
	m.list(c, pu, reqID)
	m.ring(c, to, target, reqID)
	m.syncAgent(u, reqID)
}

// otherParty returns the live party of c that is not u.
func otherParty(c *dialog, u *user) *participant {
	for _, q := range c.parts {
		if q.agent != u && q.live() {
			return q
		}
	}
	return nil
}

// completeConsult merges a consult pair: TRANSFER hands the original call
// to the consulted party and takes u off it; CONFERENCE joins everyone on
// the original call.
func (m *model) completeConsult(u *user, d *dialog, conference bool, reqID string) {
	orig, cons := pairOf(d)
	t := otherParty(cons, u)
	if t == nil {
		return
	}
	// The consult call ends.
	for _, q := range cons.parts {
		m.setPart(q, partDropped)
	}
	cons.state = dlgDropped
	m.publishDialog(cons, reqID)
	if t.agent != nil {
		m.unlist(cons, t.agent, reqID)
	}
	m.unlist(cons, u, reqID)
	orig.consult = nil
	// The consulted party joins the original call.
	now := m.now()
	joined := &participant{addr: t.addr, agent: t.agent, state: partActive, start: now, changed: now}
	orig.parts = append(orig.parts, joined)
	pu := orig.part(u)
	if conference {
		m.setPart(pu, partActive)
	} else {
		m.dropParty(orig, pu)
	}
	if t.agent == nil && !conference {
		// Transferred to an outside number: the call leaves the system.
		for _, q := range orig.parts {
			if q.live() {
				m.setPart(q, partDropped)
			}
		}
		orig.state = dlgDropped
	} else {
		orig.state = dlgActive
	}
	if t.agent != nil {
		m.list(orig, joined, reqID)
	}
	m.publishDialog(orig, reqID)
	m.settle(orig, reqID)
}

// singleStepTransfer hands d to target (or an outside number) at once.
func (m *model) singleStepTransfer(u *user, d *dialog, p *participant, target *user, reqID string) {
	m.dropParty(d, p)
	if target == nil {
		for _, q := range d.parts {
			if q.live() {
				m.setPart(q, partDropped)
			}
		}
		d.state = dlgDropped
		m.publishDialog(d, reqID)
		m.settle(d, reqID)
		return
	}
	now := m.now()
	pt := &participant{addr: target.ext, agent: target, state: partAlerting, start: now, changed: now}
	d.parts = append(d.parts, pt)
	d.state = dlgAlerting
	m.list(d, pt, reqID)
	m.publishDialog(d, reqID)
	m.settle(d, reqID)
}
