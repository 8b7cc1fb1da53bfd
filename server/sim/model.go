package sim

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"finesse-relay/xmpp/finesse"
)

// Agent states (finesse-protocol.md C.3).
const (
	stateLogin     = "LOGIN" // request only
	stateLogout    = "LOGOUT"
	stateNotReady  = "NOT_READY"
	stateReady     = "READY"
	stateReserved  = "RESERVED"
	stateTalking   = "TALKING"
	stateHold      = "HOLD"
	stateWork      = "WORK"
	stateWorkReady = "WORK_READY"
)

// side indexes.
const (
	sideA = 0
	sideB = 1
)

var sideNames = [2]string{"A", "B"}

// user is one Finesse user and its live state. All fields are guarded by
// model.mu.
type user struct {
	id, loginName, first, last, ext, password string
	roles                                     []string
	supervises                                []string // team ids

	state      string
	stateTime  time.Time
	reasonID   string // reasonCodeId, "-1" when none
	pending    string // pendingState
	pendReason string // reason for the pending state
	readyAt    time.Time

	// before/beforeReason: the state a non-ACD call returns to.
	before, beforeReason string
	// wrapNext/wrapReason: the state the wrap-up timer leads to.
	wrapNext, wrapReason string
	wrapTimer            *simTimer

	dialogs []*dialog // dialogs listed on the user's Dialogs node, in arrival order

	robot      bool
	robotTimer *simTimer

	present     [2]bool // an available XMPP session on side A / B
	logoutTimer *simTimer
	// homed[i]: side i has seen this user's desktop since it last came
	// into service; sideTimer[i] is that side's own forced-logout timer.
	homed     [2]bool
	sideTimer [2]*simTimer

	failures    int
	lockedUntil time.Time
}

func (u *user) isSupervisorOf(teamID string) bool {
	for _, t := range u.supervises {
		if t == teamID {
			return true
		}
	}
	return false
}

func (u *user) uri() string { return finesse.UserNode(u.id) }

func (u *user) loggedIn() bool { return u.state != stateLogout }

// inCall reports a call state (RESERVED, TALKING, HOLD).
func inCall(state string) bool {
	return state == stateReserved || state == stateTalking || state == stateHold
}

func inWrapUp(state string) bool { return state == stateWork || state == stateWorkReady }

// queue is one queue of the cast with its waiting calls.
type queue struct {
	id, name string
	waiting  []*dialog // FIFO
	last     finesse.QueueStatistics
	lastSet  bool
}

// model is the shared CTI model of both sides: users, calls, queues. One
// mutex guards everything; timers run their callbacks holding it, and
// notifications leave through the outbox so that no notifier is called
// under the lock.
type model struct {
	mu   sync.Mutex
	t    timings
	log  *zap.Logger
	now  func() time.Time
	out  *outbox
	tmr  *timerSet
	side [2]sideInfo

	users   map[string]*user // by login id
	byName  map[string]*user // by login name
	byExt   map[string]*user // by extension
	agents  []*user          // every user, cast order (agents, then the supervisor)
	queues  []*queue
	dialogs map[string]*dialog
	nextID  int

	inService [2]bool

	callRand  *rand.Rand // the call generator's draws only
	robotRand *rand.Rand // robot decisions
	odds      robotOdds
	genTimer  *simTimer
	statTimer *simTimer
	chat      *chatMRD // the nonvoice chat MRD (media.go)

	// verify checks an IdS access token and returns its user_id; nil
	// refuses every Bearer token.
	verify func(token string) (userID string, err error)
}

// sideInfo is what SystemInfo says about a side.
type sideInfo struct {
	host                             string
	httpsPort, xmppPort, xmppTLSPort int
	xmppDomain, pubsubDomain         string
}

func newModel(cfg Config, t timings) *model {
	m := &model{
		t: t, log: cfg.Logger, now: time.Now, out: newOutbox(),
		users: make(map[string]*user), byName: make(map[string]*user), byExt: make(map[string]*user),
		dialogs:   make(map[string]*dialog),
		nextID:    16817000,
		inService: [2]bool{true, true},
		callRand:  rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed0001)), // #nosec G115,G404 -- a deterministic simulation seed reinterpreted as uint64; not security
		robotRand: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed0002)), // #nosec G115,G404 -- a deterministic simulation seed reinterpreted as uint64; not security
		odds:      defaultOdds,
	}
	m.tmr = newTimerSet(&m.mu)
	m.agents = newCast(cfg.Agents, cfg.Password)
	now := m.now()
	for _, u := range m.agents {
		u.stateTime = now
		m.users[u.id] = u
		m.byName[u.loginName] = u
		m.byExt[u.ext] = u
		u.robot = cfg.Robots && u.id != HumanAgentID && u.id != SupervisorID
	}
	for _, q := range castQueues {
		m.queues = append(m.queues, &queue{id: q.id, name: q.name})
	}
	return m
}

func (m *model) queue(id string) *queue {
	for _, q := range m.queues {
		if q.id == id {
			return q
		}
	}
	return nil
}

// userByAny finds a user by login id or login name.
func (m *model) userByAny(id string) *user {
	if u := m.users[id]; u != nil {
		return u
	}
	return m.byName[id]
}

func (m *model) newRequestID() string { return newID() }

// --- agent state ------------------------------------------------------

// setState moves u to state with reason, publishes the User update and
// runs what follows from it (routing, robots, the presence rule).
func (m *model) setState(u *user, state, reason, reqID string) {
	prev := u.state
	if inCall(state) && !inCall(prev) && !inWrapUp(prev) && prev != stateLogout {
		u.before, u.beforeReason = prev, u.reasonID
	}
	u.state = state
	u.stateTime = m.now()
	u.reasonID = reason
	if state == stateReady && prev != stateReady {
		u.readyAt = u.stateTime
	}
	if state == stateLogout {
		u.pending, u.pendReason = "", ""
		m.tmr.stop(u.wrapTimer)
		u.wrapTimer = nil
	}
	m.publishUser(u, reqID)
	if (prev == stateLogout) != (state == stateLogout) {
		m.checkPresenceRule(u)
	}
	if state == stateReady {
		m.routeCalls()
	}
	m.robotKick(u)
}

// republish publishes u unchanged (a forced sign-in, a no-op change).
func (m *model) republish(u *user, reqID string) { m.publishUser(u, reqID) }

// userChange is a PUT /User/{id} request.
type userChange struct {
	State        string
	ReasonCodeID string
	Extension    string
}

// checkUserChange validates a state change synchronously (the 400s).
// supervisor is true when actor changes a member of a team it supervises.
func (m *model) checkUserChange(target *user, r userChange, supervisor bool) *restError {
	if r.State == "" {
		return errMissing("state")
	}
	cur := target.state
	if supervisor {
		switch r.State {
		case stateNotReady:
			if r.ReasonCodeID != "" {
				return errInput("reasonCodeId", "a supervisor may not send a reason code for NOT_READY")
			}
			if cur != stateReady && !inWrapUp(cur) {
				return errState(cur, r.State)
			}
		case stateReady:
			if cur != stateNotReady && !inWrapUp(cur) {
				return errState(cur, r.State)
			}
		case stateLogout:
			if cur == stateLogout {
				return errState(cur, r.State)
			}
		default:
			return errInput("state", "a supervisor may set READY, NOT_READY or LOGOUT only")
		}
		return nil
	}
	switch r.State {
	case stateLogin:
		if r.Extension == "" {
			return errMissing("extension")
		}
		if !validAddress(r.Extension) {
			return errInput("extension", "not a dialable extension")
		}
	case stateReady:
		if cur == stateLogout {
			return errState(cur, r.State)
		}
	case stateNotReady:
		if r.ReasonCodeID != "" && !requestableReason(r.ReasonCodeID, categoryNotReady) {
			return errInput("reasonCodeId", "not a NOT_READY reason code")
		}
		if cur == stateLogout {
			return errState(cur, r.State)
		}
	case stateLogout:
		if r.ReasonCodeID != "" && !requestableReason(r.ReasonCodeID, categoryLogout) {
			return errInput("reasonCodeId", "not a LOGOUT reason code")
		}
		if cur != stateNotReady {
			return errState(cur, r.State)
		}
	default:
		return errInput("state", "state "+r.State+" cannot be requested")
	}
	return nil
}

// applyUserChange performs a validated change after the CTI delay. If the
// state moved in between it publishes an asynchronous error instead.
func (m *model) applyUserChange(target *user, r userChange, supervisor bool, reqID string) {
	if e := m.checkUserChange(target, r, supervisor); e != nil {
		m.publishAPIError(target.uri(), target.uri(), reqID, finesse.APIError{
			ErrorType: "Invalid State", ErrorMessage: e.msg, ErrorData: target.id,
		})
		return
	}
	cur := target.state
	if supervisor {
		switch r.State {
		case stateNotReady:
			m.leaveWrapUp(target, reqID)
			m.setState(target, stateNotReady, reasonSupervisor, reqID)
		case stateReady:
			m.leaveWrapUp(target, reqID)
			m.setState(target, stateReady, reasonNone, reqID)
		case stateLogout:
			m.logoutNow(target, reasonSupLogout, reqID)
		}
		return
	}
	switch r.State {
	case stateLogin:
		if cur != stateLogout {
			m.republish(target, reqID) // forced sign-in keeps the current state
			return
		}
		if r.Extension != target.ext {
			e := finesse.APIError{ErrorType: "Invalid Device", ErrorMessage: "CF_INVALID_LOGON_DEVICE_SPECIFIED", ErrorData: "13"}
			if other := m.byExt[r.Extension]; other != nil {
				e = finesse.APIError{ErrorType: "Device Busy", ErrorMessage: "E_CTI_DEVICE_IN_USE", ErrorData: "10"}
			}
			m.publishAPIError(target.uri(), target.uri(), reqID, e)
			return
		}
		m.setState(target, stateNotReady, reasonNone, reqID)
	case stateReady, stateNotReady:
		reason := reasonNone
		if r.State == stateNotReady && r.ReasonCodeID != "" {
			reason = r.ReasonCodeID
		}
		if inCall(cur) {
			target.pending, target.pendReason = r.State, reason
			m.republish(target, reqID)
			return
		}
		m.leaveWrapUp(target, reqID)
		m.setState(target, r.State, reason, reqID)
	case stateLogout:
		reason := reasonNone
		if r.ReasonCodeID != "" {
			reason = r.ReasonCodeID
		}
		m.setState(target, stateLogout, reason, reqID)
	}
}

// logoutNow logs u out with reason whatever its state (supervisor and
// forced logout): a ringing ACD call goes back to its queue; during a call
// the logout becomes pendingState LOGOUT and happens when the call ends.
func (m *model) logoutNow(u *user, reason, reqID string) {
	switch u.state {
	case stateLogout:
		return
	case stateTalking, stateHold:
		u.pending, u.pendReason = stateLogout, reason
		m.republish(u, reqID)
		return
	case stateReserved:
		for _, d := range append([]*dialog(nil), u.dialogs...) {
			if p := d.part(u); p != nil && p.state == partAlerting {
				m.withdrawOffer(d, u, reqID)
			}
		}
		if inCall(m.callState(u)) { // still on another call
			u.pending, u.pendReason = stateLogout, reason
			m.republish(u, reqID)
			return
		}
	}
	m.leaveWrapUp(u, reqID)
	m.setState(u, stateLogout, reason, reqID)
}

// leaveWrapUp ends u's wrap-up (if any) without a state change: the timer
// stops and the wrapped-up dialogs leave the user's Dialogs collection.
func (m *model) leaveWrapUp(u *user, reqID string) {
	m.tmr.stop(u.wrapTimer)
	u.wrapTimer = nil
	for _, d := range append([]*dialog(nil), u.dialogs...) {
		if p := d.part(u); p == nil || !p.live() {
			m.unlist(d, u, reqID)
		}
	}
}

// startWrapUp moves u into WORK or WORK_READY after an inbound call.
func (m *model) startWrapUp(u *user, reqID string) {
	state, next, reason := stateWorkReady, stateReady, reasonNone
	switch {
	case u.pending == stateNotReady:
		state, next, reason = stateWork, stateNotReady, u.pendReason
	case u.pending == "" && u.before == stateNotReady:
		state, next, reason = stateWork, stateNotReady, u.beforeReason
	}
	u.pending, u.pendReason = "", ""
	u.wrapNext, u.wrapReason = next, reason
	m.tmr.stop(u.wrapTimer)
	u.wrapTimer = m.tmr.after(m.t.wrapUpTimer, func() {
		u.wrapTimer = nil
		if !inWrapUp(u.state) {
			return
		}
		m.leaveWrapUp(u, "")
		m.setState(u, u.wrapNext, u.wrapReason, "")
	})
	m.setState(u, state, reasonNone, reqID)
}

// --- presence rule (B.9) ------------------------------------------------

// presence records an XMPP availability change of loginID on side.
func (m *model) presence(side int, loginID string, available bool) {
	u := m.users[loginID]
	if u == nil {
		return
	}
	u.present[side] = available
	if available && u.robot {
		m.releaseRobot(u)
	}
	m.checkPresenceRule(u)
}

// checkPresenceRule starts or cancels u's forced-logout timers (B.9;
// robots have a desktop of their own and are exempt):
//   - a signed-in user with no available session on either side is logged
//     out (reason 255) after the delay;
//   - a side IN_SERVICE that has seen the user's desktop logs the user out
//     after the delay once that desktop is gone from it, even when the user
//     is present on the other side: a client that drops off side A while A
//     is in service and moves to side B is still logged out by A.
func (m *model) checkPresenceRule(u *user) {
	absent := u.loggedIn() && !u.robot && !u.present[sideA] && !u.present[sideB]
	if !absent {
		m.tmr.stop(u.logoutTimer)
		u.logoutTimer = nil
	} else if u.logoutTimer == nil {
		u.logoutTimer = m.tmr.after(m.t.forcedLogout, func() {
			u.logoutTimer = nil
			m.logoutNow(u, reasonForced, "")
		})
	}
	for side := range u.present {
		if u.present[side] {
			u.homed[side] = true
		}
		gone := u.loggedIn() && !u.robot && u.homed[side] && !u.present[side] && m.inService[side]
		if !gone {
			m.tmr.stop(u.sideTimer[side])
			u.sideTimer[side] = nil
			continue
		}
		if u.sideTimer[side] != nil {
			continue
		}
		u.sideTimer[side] = m.tmr.after(m.t.forcedLogout, func() {
			u.sideTimer[side] = nil
			u.homed[side] = false
			m.logoutNow(u, reasonForced, "")
		})
	}
}

// --- sides --------------------------------------------------------------

// setInService changes a side's status; it reports whether it changed.
func (m *model) setInService(side int, in bool) bool {
	if m.inService[side] == in {
		return false
	}
	m.inService[side] = in
	m.publishSystemInfo(side)
	if !in {
		// A side out of service forgets its desktops (its CTI link is
		// down): it will not log out agents who moved to the other side.
		for _, u := range m.agents {
			u.homed[side] = false
			m.checkPresenceRule(u)
		}
		m.tmr.after(m.t.xmppDropGrace, func() {
			if !m.inService[side] {
				m.out.push(outItem{sides: 1 << side, drop: true})
			}
		})
		return true
	}
	// Back in service: Finesse republishes the agents' state.
	for _, u := range m.agents {
		if u.loggedIn() {
			m.emitUser(u, "", 1<<side)
		}
	}
	return true
}

// --- queue statistics ---------------------------------------------------

func (m *model) queueStats(q *queue) finesse.QueueStatistics {
	var s finesse.QueueStatistics
	s.CallsInQueue = len(q.waiting)
	if len(q.waiting) > 0 {
		s.StartTimeOfLongestCallInQueue = q.waiting[0].created.UTC().Format(time.RFC3339)
	}
	for _, u := range m.agents {
		switch u.state {
		case stateLogout:
			continue
		case stateReady:
			s.AgentsReady++
		case stateNotReady:
			s.AgentsNotReady++
		case stateWork:
			s.AgentsWrapUpNotReady++
		case stateWorkReady:
			s.AgentsWrapUpReady++
		case stateReserved:
			s.AgentsBusyOther++
		case stateTalking, stateHold:
			switch m.talkKind(u, q) {
			case "in":
				s.AgentsTalkingInbound++
			case "out":
				s.AgentsTalkingOutbound++
			case "internal":
				s.AgentsTalkingInternal++
			default:
				s.AgentsBusyOther++
			}
		}
		s.AgentsLoggedOn++
	}
	return s
}

// talkKind classifies u's current call for q's statistics.
func (m *model) talkKind(u *user, q *queue) string {
	for _, d := range u.dialogs {
		p := d.part(u)
		if p == nil || !p.live() {
			continue
		}
		switch {
		case d.queue == q:
			return "in"
		case d.queue != nil:
			return "other"
		case d.callType == callOut:
			return "out"
		default:
			return "internal"
		}
	}
	return "other"
}

// tickQueueStats publishes every queue whose statistics changed.
func (m *model) tickQueueStats() {
	for _, q := range m.queues {
		s := m.queueStats(q)
		if q.lastSet && reflect.DeepEqual(s, q.last) {
			continue
		}
		q.last, q.lastSet = s, true
		obj := m.queueObject(q, &s)
		m.emit(finesse.QueueNode(q.id), finesse.EventPut, obj.URI, "", obj, m.liveSides())
	}
	m.statTimer = m.tmr.after(m.t.queueStats, m.tickQueueStats)
}

func itoa(n int) string { return strconv.Itoa(n) }
