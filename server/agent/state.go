package agent

import (
	"slices"
	"strings"
	"sync"

	"finesse-relay/xmpp/finesse"
)

// maxHeld bounds the notifications held while a snapshot is in flight; past
// it the oldest are dropped and the snapshot's state wins (a fresh snapshot
// follows any reconnect, so nothing is lost for good).
const maxHeld = 4096

// stateCache keeps the last state of every node of one agent and turns
// notifications into browser events. It is the only place that knows how a
// Finesse notification changes a node's state:
//   - a dialogs node (User/{id}/Dialogs, the nonvoice User/{id}/Dialogs/Media)
//     gains members on POST, loses them on DELETE, and updates one member on
//     an item PUT (source Dialog/{id});
//   - a Team/{id}/Users node updates one member on a user PUT;
//   - apiErrors change no state;
//   - any other node's state is the notification's object.
type stateCache struct {
	loginID string
	pub     Publisher
	metrics *Metrics

	mu      sync.Mutex
	holding bool
	held    []finesse.Update
	states  map[string]any
}

func newStateCache(loginID string, pub Publisher, m *Metrics) *stateCache {
	return &stateCache{loginID: loginID, pub: pub, metrics: m, states: make(map[string]any)}
}

// hold starts holding notifications (a snapshot is being fetched).
func (c *stateCache) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// release applies the notifications held since hold, in order.
func (c *stateCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	for _, u := range c.held {
		c.applyLocked(u)
	}
	c.held = nil
}

// setState records a snapshot value and publishes it as a state message.
func (c *stateCache) setState(node string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states[node] = v
	c.pub.State(node, v)
}

// state returns the node's current state (nil when it has none).
func (c *stateCache) state(node string) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states[node]
}

// handle relays one notification (called on the Notifier's goroutine).
func (c *stateCache) handle(u finesse.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		if len(c.held) == maxHeld {
			c.held = c.held[1:]
		}
		c.held = append(c.held, u)
		return
	}
	c.applyLocked(u)
}

func (c *stateCache) applyLocked(u finesse.Update) {
	obj, err := finesse.DecodeData(u.Data)
	c.metrics.event(err != nil)
	var data any = obj
	if err != nil || obj == nil {
		data = rawData(u.Data)
	}
	state := c.nextState(u, obj)
	if state != nil {
		c.states[u.Node] = state
	}
	if u.Replayed {
		// The server re-sent the node's last item (on subscribe or
		// presence): it is the node's state, never an event whose stale
		// requestId could answer a browser's pending request.
		if state != nil {
			c.pub.State(u.Node, state)
		}
		return
	}
	c.pub.EventAt(u.Received, u.Node, string(u.Event), u.Source, u.RequestID, data, state)
}

// rawData is what browsers get when the data could not be decoded.
func rawData(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return map[string]string{"xml": string(b)}
}

// nextState returns the node's new state, or nil when it does not change.
// It never modifies a value it handed out before (browsers may hold it).
func (c *stateCache) nextState(u finesse.Update, obj finesse.Object) any {
	switch v := obj.(type) {
	case nil, *finesse.APIErrors:
		return nil
	case *finesse.Dialogs:
		if !holdsDialogs(u.Node) {
			return v
		}
		cur, _ := c.states[u.Node].([]finesse.Dialog)
		next := slices.Clone(cur)
		for _, d := range v.Dialogs {
			next = slices.DeleteFunc(next, func(x finesse.Dialog) bool { return x.ID == d.ID })
			if u.Event != finesse.EventDelete {
				next = append(next, d)
			}
		}
		return next
	case *finesse.Dialog:
		if !holdsDialogs(u.Node) {
			return v
		}
		cur, _ := c.states[u.Node].([]finesse.Dialog)
		next := slices.Clone(cur)
		i := slices.IndexFunc(next, func(x finesse.Dialog) bool { return x.ID == v.ID })
		switch {
		case u.Event == finesse.EventDelete && i >= 0:
			next = slices.Delete(next, i, i+1)
		case i >= 0:
			next[i] = *v
		case u.Event != finesse.EventDelete:
			next = append(next, *v)
		}
		return next
	case *finesse.User:
		team, ok := c.states[u.Node].(*finesse.Team)
		if !ok || !strings.HasSuffix(u.Node, "/Users") {
			return v
		}
		next := *team
		next.Users = slices.Clone(team.Users)
		i := slices.IndexFunc(next.Users, func(x finesse.User) bool { return x.LoginID == v.LoginID })
		switch {
		case u.Event == finesse.EventDelete && i >= 0:
			next.Users = slices.Delete(next.Users, i, i+1)
		case i >= 0:
			next.Users[i] = *v
		case u.Event != finesse.EventDelete:
			next.Users = append(next.Users, *v)
		}
		return &next
	default:
		return obj
	}
}

// holdsDialogs reports whether node's state is a list of dialogs (voice
// Dialogs or nonvoice Dialogs/Media; see finesse.NodeKind.HoldsDialogs).
func holdsDialogs(node string) bool {
	n, err := finesse.ParseNode(node)
	return err == nil && n.Kind.HoldsDialogs()
}
