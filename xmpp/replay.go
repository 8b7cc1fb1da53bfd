package xmpp

import "sync"

// nsDelay is XEP-0203 delayed delivery, which servers put on the last
// published item they re-send on subscribe or presence (ejabberd does).
const nsDelay = "urn:xmpp:delay"

// maxReplayNodes bounds the nodes whose last item id is remembered; past it
// the memory starts over (a replay then goes unrecognised by id only).
const maxReplayNodes = 1024

// replayTracker recognises pubsub items that are replays of earlier ones
// rather than fresh changes (XEP-0060 "last published item"): servers
// re-send a node's last item after a subscribe (ejabberd always when
// configured so, Prosody can) and on available presence. An item is a
// replay when
//   - its message carries a <delay xmlns='urn:xmpp:delay'/>, or
//   - it arrives on a node whose subscribe answer has not arrived yet (the
//     server sends the last item before or with the answer), or
//   - its id is the id of the last item received on that node.
//
// Its zero value is ready to use. Subscribe calls begin and end around the
// subscribe IQ; the stream handler calls replayed for every item.
type replayTracker struct {
	mu      sync.Mutex
	pending map[string]int    // node -> subscribe IQs sent and not answered
	lastID  map[string]string // node -> id of the last item received
}

// begin records a subscribe IQ about to be sent for node.
func (r *replayTracker) begin(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[string]int)
	}
	r.pending[node]++
}

// end records the answer (or the abandonment) of a subscribe IQ for node.
// It must run before the stream handler reads the next stanza: Subscribe
// calls it before releasing the IQ answer to mellium's Serve.
func (r *replayTracker) end(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[node] <= 1 {
		delete(r.pending, node)
		return
	}
	r.pending[node]--
}

// replayed reports whether the item id on node is a replay, and remembers
// id as the node's last item.
func (r *replayTracker) replayed(node, id string, delayed bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	replay := delayed || r.pending[node] > 0
	if id != "" {
		if last, ok := r.lastID[node]; ok && last == id {
			replay = true
		}
		if r.lastID == nil || len(r.lastID) >= maxReplayNodes {
			r.lastID = make(map[string]string)
		}
		r.lastID[node] = id
	}
	return replay
}
