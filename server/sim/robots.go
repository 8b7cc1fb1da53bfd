package sim

import (
	"time"
)

// robotOdds are the probabilities of the robots' choices.
type robotOdds struct {
	customerHangsUp float64 // the customer ends the call before the robot does
	consults        float64 // the robot consults another agent and transfers
	takesBreak      float64 // after wrap-up, NOT_READY with a reason instead of READY
}

var defaultOdds = robotOdds{customerHangsUp: 0.3, consults: 0.12, takesBreak: 0.2}

// between draws a duration in [lo, hi) from the robot source.
func (m *model) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(m.robotRand.Int64N(int64(hi-lo)))
}

// startRobots signs every robot in within the login spread.
func (m *model) startRobots() {
	for _, u := range m.agents {
		if !u.robot {
			continue
		}
		u.robotTimer = m.tmr.after(m.between(0, m.t.loginSpread), func() {
			u.robotTimer = nil
			m.robotStep(u)
		})
	}
}

// releaseRobot hands u over to a person for good.
func (m *model) releaseRobot(u *user) {
	if !u.robot {
		return
	}
	u.robot = false
	m.tmr.stop(u.robotTimer)
	u.robotTimer = nil
	m.checkPresenceRule(u)
}

// robotKick schedules u's next robot step for its new state.
func (m *model) robotKick(u *user) {
	if !u.robot {
		return
	}
	var d time.Duration
	switch u.state {
	case stateLogout:
		if u.robotTimer != nil {
			return // the initial sign-in is scheduled
		}
		d = 2 * m.t.breakMax // signed out by a supervisor: come back later
	case stateNotReady:
		d = m.between(m.t.breakMin, m.t.breakMax)
	case stateReady:
		m.tmr.stop(u.robotTimer)
		u.robotTimer = nil
		return
	case stateReserved:
		d = m.t.ring
	case stateTalking:
		d = m.between(m.t.talkMin, m.t.talkMax)
	case stateHold:
		d = m.t.ring
	case stateWork, stateWorkReady:
		d = m.between(m.t.robotWrap/2, m.t.robotWrap*3/2)
	default:
		return
	}
	m.robotAfter(u, d)
}

func (m *model) robotAfter(u *user, d time.Duration) {
	m.tmr.stop(u.robotTimer)
	u.robotTimer = m.tmr.after(d, func() {
		u.robotTimer = nil
		m.robotStep(u)
	})
}

// robotStep does what a robot agent does next in its current state.
func (m *model) robotStep(u *user) {
	if !u.robot {
		return
	}
	switch u.state {
	case stateLogout:
		m.applyUserChange(u, userChange{State: stateLogin, Extension: u.ext}, false, "")
	case stateNotReady:
		m.applyUserChange(u, userChange{State: stateReady}, false, "")
	case stateReserved:
		for _, d := range u.dialogs {
			if p := d.part(u); p != nil && p.state == partAlerting {
				m.applyDialogAction(u, d, dialogRequest{Action: actAnswer, Target: u.ext}, "")
				return
			}
		}
	case stateTalking:
		m.robotTalkDone(u)
	case stateHold:
		for _, d := range u.dialogs {
			if p := d.part(u); p != nil && p.state == partHeld && d.consult == nil {
				m.applyDialogAction(u, d, dialogRequest{Action: actRetrieve, Target: u.ext}, "")
				return
			}
		}
		m.robotAfter(u, m.t.ring)
	case stateWork, stateWorkReady:
		for _, d := range u.dialogs {
			if p := d.part(u); p != nil && p.state == partWrapUp && d.wrapUpReason == "" {
				reason := wrapUpReasons[m.robotRand.IntN(len(wrapUpReasons))]
				m.applyDialogAction(u, d, dialogRequest{Action: actUpdate, WrapUpReason: &reason}, "")
			}
		}
		if m.robotRand.Float64() < m.odds.takesBreak {
			var nr []string
			for _, r := range reasonCodes {
				if r.Category == categoryNotReady {
					nr = append(nr, r.ID)
				}
			}
			m.applyUserChange(u, userChange{State: stateNotReady, ReasonCodeID: nr[m.robotRand.IntN(len(nr))]}, false, "")
			return
		}
		m.applyUserChange(u, userChange{State: stateReady}, false, "")
	}
}

// robotTalkDone ends (or transfers) the robot's conversation.
func (m *model) robotTalkDone(u *user) {
	// A consult the robot started: transfer once answered.
	for _, d := range u.dialogs {
		if d.consultBy != u || d.consultOf == nil {
			continue
		}
		if m.transferReady(d, u) {
			m.applyDialogAction(u, d, dialogRequest{Action: actTransfer, Target: u.ext}, "")
			return
		}
		if d.state == dlgAlerting || d.state == dlgInitiating {
			if m.now().Sub(d.created) > 10*m.t.ring {
				// Nobody answers the consult: give up and take the caller back.
				m.applyDialogAction(u, d, dialogRequest{Action: actDrop, Target: u.ext}, "")
				return
			}
			m.robotAfter(u, m.t.ring)
			return
		}
	}
	for _, d := range u.dialogs {
		p := d.part(u)
		if p == nil || p.state != partActive {
			continue
		}
		if d.consultOf != nil && d.consultBy != u {
			// Consulted: the agent who called decides when this ends.
			m.robotAfter(u, m.t.talkMin)
			return
		}
		if d.acd && d.consult == nil && d.consultOf == nil && d.liveCount() == 2 && m.robotRand.Float64() < m.odds.consults {
			if t := m.consultTarget(u); t != nil {
				m.applyDialogAction(u, d, dialogRequest{Action: actConsult, Target: u.ext, To: t.ext}, "")
				m.robotAfter(u, 2*m.t.ring+m.t.cti)
				return
			}
		}
		m.applyDialogAction(u, d, dialogRequest{Action: actDrop, Target: u.ext}, "")
		return
	}
	// Only held calls left (a consult ended): take the call back.
	for _, d := range u.dialogs {
		if p := d.part(u); p != nil && p.state == partHeld {
			m.applyDialogAction(u, d, dialogRequest{Action: actRetrieve, Target: u.ext}, "")
			return
		}
	}
}

// consultTarget picks another robot that is signed in and on no call.
func (m *model) consultTarget(u *user) *user {
	n := len(m.agents)
	for range 8 {
		t := m.agents[m.robotRand.IntN(n)]
		if t != u && t.robot && (t.state == stateReady || t.state == stateNotReady) && len(t.dialogs) == 0 {
			return t
		}
	}
	return nil
}

// robotAnswered: when an agent answers an ACD call, the customer may hang
// up first, at a random time within the talk range (robots' calls only;
// a person decides when their own call ends).
func (m *model) robotAnswered(u *user, d *dialog) {
	if !u.robot || !d.acd || d.ending != nil || m.robotRand.Float64() >= m.odds.customerHangsUp {
		return
	}
	d.ending = m.tmr.after(m.between(m.t.talkMin/2, m.t.talkMax), func() {
		d.ending = nil
		for _, p := range d.parts {
			if p.agent == nil && p.live() {
				m.leave(d, p, "")
				return
			}
		}
	})
}
