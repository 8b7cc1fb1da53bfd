package agent

import (
	"slices"
	"strings"
	"sync"
	"time"

	"finesse-relay/xmpp/finesse"
)

// Bounds of the pending-request set of one Session.
const (
	// pendingTTL is how long a requestId Finesse accepted waits for its
	// notification before it is forgotten (Finesse answers within
	// milliseconds; a reconnect or failover takes seconds).
	pendingTTL = 2 * time.Minute
	// maxPending bounds the requestIds waiting per Session; past it the
	// oldest is forgotten.
	maxPending = 256
)

// pendingRequest is one requestId Finesse answered 202 for, whose
// notification has not arrived yet.
type pendingRequest struct {
	id    string
	node  string    // the node whose notification will carry the outcome
	noted time.Time // when Finesse accepted it
}

// pendingRequests is a bounded set of requestIds awaiting their
// notification. Safe for concurrent use: the REST proxy notes, the
// Notifier's goroutine resolves, the Session goroutine reconciles.
type pendingRequests struct {
	now func() time.Time

	mu   sync.Mutex
	byID map[string]pendingRequest
}

func newPendingRequests(now func() time.Time) *pendingRequests {
	if now == nil {
		now = time.Now
	}
	return &pendingRequests{now: now, byID: make(map[string]pendingRequest)}
}

// note remembers id (affecting node), forgetting expired entries and, when
// full, the oldest one.
func (p *pendingRequests) note(id, node string) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byID[id]; !ok && len(p.byID) >= maxPending {
		p.expireLocked(now)
		if len(p.byID) >= maxPending {
			oldest := ""
			var at time.Time
			for k, r := range p.byID {
				if oldest == "" || r.noted.Before(at) {
					oldest, at = k, r.noted
				}
			}
			delete(p.byID, oldest)
		}
	}
	p.byID[id] = pendingRequest{id: id, node: node, noted: now}
}

// resolve forgets id: its notification arrived.
func (p *pendingRequests) resolve(id string) {
	p.mu.Lock()
	delete(p.byID, id)
	p.mu.Unlock()
}

// takeBefore removes and returns the unexpired requests noted before cutoff,
// oldest first. Requests noted later stay: they were accepted while the
// current upstream session was already up, so their notification is on its
// way.
func (p *pendingRequests) takeBefore(cutoff time.Time) []pendingRequest {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(now)
	var out []pendingRequest
	for id, r := range p.byID {
		if r.noted.Before(cutoff) {
			out = append(out, r)
			delete(p.byID, id)
		}
	}
	slices.SortFunc(out, func(a, b pendingRequest) int { return a.noted.Compare(b.noted) })
	return out
}

// len is the number of requests waiting.
func (p *pendingRequests) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}

func (p *pendingRequests) expireLocked(now time.Time) {
	for id, r := range p.byID {
		if now.Sub(r.noted) >= pendingTTL {
			delete(p.byID, id)
		}
	}
}

// requestNode is the node of loginID's Session whose notification carries
// the outcome of a request to path (a Finesse REST path, with or without
// the /finesse/api/ prefix), or "" when the Session publishes no such node:
//
//	User/{loginID}                 → User/{loginID}
//	User/{loginID}/Dialogs         → User/{loginID}/Dialogs
//	Dialog/{id}                    → User/{loginID}/Dialogs
//	User/{loginID}/Media/{mrd}     → User/{loginID}/Media/{mrd}
//
// Requests about another user (a supervisor changing an agent's state) are
// not tracked: their outcome is that user's notification, not one of this
// Session's nodes.
func requestNode(loginID, path string) string {
	if loginID == "" {
		return ""
	}
	p := strings.TrimPrefix(path, finesse.APIPrefix)
	p = strings.TrimPrefix(p, "/")
	seg := strings.Split(p, "/")
	own := len(seg) >= 2 && seg[0] == "User" && strings.EqualFold(seg[1], loginID)
	switch {
	case len(seg) == 2 && seg[0] == "Dialog" && seg[1] != "":
		return finesse.DialogsNode(loginID)
	case own && len(seg) == 2:
		return finesse.UserNode(loginID)
	case own && len(seg) == 3 && seg[2] == "Dialogs":
		return finesse.DialogsNode(loginID)
	case own && len(seg) == 4 && seg[2] == "Media" && seg[3] != "":
		return finesse.MediaNode(loginID, seg[3])
	}
	return ""
}

// NoteRequest tells the Session that Finesse accepted a request (HTTP 202)
// with requestID for path (the Finesse REST path). Until the notification
// carrying requestID arrives, the request is pending; when the upstream
// session was down at the time (a reconnect or a failover in progress) and
// the notification never comes, the Session publishes an event derived
// from the snapshot after the reconnect (Publisher.ReconciledEvent), so a
// browser waiting on requestID always gets an answer. Requests for nodes
// the Session does not publish are ignored. Safe for concurrent use.
func (s *Session) NoteRequest(requestID, path string) {
	if requestID == "" {
		return
	}
	if node := requestNode(s.loginID, path); node != "" {
		s.pending.note(requestID, node)
	}
}

// reconcile publishes, for every request accepted before the current
// upstream session came up (upAt) whose notification has not arrived, an
// event derived from the snapshot just taken: that node, event PUT, that
// requestId, the node's current state as data, marked reconciled.
func (s *Session) reconcile(upAt time.Time) {
	for _, r := range s.pending.takeBefore(upAt) {
		s.pub.ReconciledEvent(r.node, r.id, s.cache.state(r.node))
	}
}
