package xmpp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"
)

// Delayed delivery (XEP-0203, and the legacy XEP-0091 form), which servers
// put on the last published item they re-send on subscribe (ejabberd does).
const (
	nsDelay       = "urn:xmpp:delay"
	nsLegacyDelay = "jabber:x:delay"
)

// barrierLapse bounds how long items count as replays after the initial
// presence when the barrier query is never answered.
const barrierLapse = 10 * time.Second

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
//   - its id is the id of the last item received on that node, or
//   - it arrives after our initial presence and before the answer to the
//     barrier query sent right behind it: ejabberd re-sends the last item
//     of every subscribed node on available presence, without <delay/>,
//     and routes those items to us before the answer to a query sent after
//     the presence.
//
// Its zero value is ready to use. Subscribe calls begin and end around the
// subscribe IQ; the stream handler calls replayed for every item.
type replayTracker struct {
	mu      sync.Mutex
	pending map[string]int    // node -> subscribe IQs sent and not answered
	lastID  map[string]string // node -> id of the last item received
	barrier string            // id of the barrier query awaiting its answer
	until   time.Time         // when an unanswered barrier lapses
}

// sendBarrier sends the barrier query (a disco#info get to the server, which
// every server answers) right after the initial presence, without waiting
// for its answer: the stream handler recognises it by id.
func (c *Client) sendBarrier(ctx context.Context) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "replay-barrier-" + hex.EncodeToString(b[:])
	c.replay.mu.Lock()
	c.replay.barrier, c.replay.until = id, time.Now().Add(barrierLapse)
	c.replay.mu.Unlock()
	iq := fmt.Sprintf(`<iq xmlns='jabber:client' type='%s' id='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
		stanza.GetIQ, id, c.domain.String())
	if err := c.sess.Send(ctx, xml.NewDecoder(strings.NewReader(iq))); err != nil {
		return fmt.Errorf("xmpp: send replay barrier: %w", err)
	}
	return nil
}

// barrierDone reports whether the barrier query was answered.
func (r *replayTracker) barrierDone() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.barrier == ""
}

// barrierAnswered reports whether id is the barrier query's, and ends the
// barrier if so.
func (r *replayTracker) barrierAnswered(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.barrier == "" || id != r.barrier {
		return false
	}
	r.barrier = ""
	return true
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
	replay := delayed || r.pending[node] > 0 || (r.barrier != "" && time.Now().Before(r.until))
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
