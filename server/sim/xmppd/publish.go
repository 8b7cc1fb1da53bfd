package xmppd

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"

	"finesse-relay/xmpp/finesse"

	"mellium.im/xmpp/jid"
)

// publication is one Publish call, encoded once and shared by every
// recipient's queue. A recipient's message is
//
//	<message from='<pubsub>' to='<jid>' id='<node>__<jid>__<5 chars>'  (head, per recipient)
//	><event ...><items node='<node>'><item id='<id>'><notification ...>escaped Update</notification></item></items></event></message>  (body, shared)
type publication struct {
	node []byte // the node, escaped for attributes
	body []byte
}

// Publish delivers updateDoc, a complete <Update> document, as a pubsub
// event on node: escaped inside <notification> (F.1). Recipients are the
// available sessions with priority >= 0 of
//
//   - the user, for the default nodes /finesse/api/User/{id},
//     .../User/{id}/Dialogs, .../User/{id}/Media/{mrdId} and
//     .../User/{id}/Queues (addressed to the bare JID);
//   - every user, for /finesse/api/SystemInfo (bare JID);
//   - every explicit subscription of the node: a full-JID subscription
//     reaches that session, a bare-JID one every session of the user
//     (addressed to the subscribed JID). A session subscribed twice gets
//     the event twice, as Openfire sends one per subscription.
//
// Publish never blocks: it encodes the body once, then adds a small item
// to each recipient's bounded queue; each connection's writer adds the
// per-recipient head. A connection whose queue is full is dropped with a
// resource-constraint stream error (logged).
func (s *Server) Publish(node string, updateDoc []byte) {
	pub := s.newPublication(node, updateDoc)
	kind, owner, _ := s.nodeKind(node)
	var full []*conn
	s.mu.RLock()
	deliver := func(c *conn, toFull bool) {
		if c.online && c.priority >= 0 && !c.enqueue(outItem{pub: pub, full: toFull}) {
			full = append(full, c)
		}
	}
	switch kind {
	case nodeDefault:
		if u := s.users[owner]; u != nil {
			for c := range u.conns {
				deliver(c, false)
			}
		}
	case nodeSystem:
		for _, c := range s.sessions {
			deliver(c, false)
		}
	}
	for j, sub := range s.subs[node] {
		if sub.full {
			if c := s.sessions[j]; c != nil {
				deliver(c, true)
			}
			continue
		}
		if u := s.users[sub.user]; u != nil {
			for c := range u.conns {
				deliver(c, false)
			}
		}
	}
	s.mu.RUnlock()
	s.dropFull(full)
}

// newPublication encodes the shared body of a publication.
func (s *Server) newPublication(node string, doc []byte) *publication {
	p := &publication{node: appendAttr(nil, node)}
	b := make([]byte, 0, 256+len(p.node)+len(doc)+len(doc)/8)
	b = append(b, "><event xmlns='"+nsPubSubEvent+"'><items node='"...)
	b = append(b, p.node...)
	b = append(b, "'><item id='"...)
	b = appendItemID(b)
	b = append(b, "'><notification xmlns='"+nsPubSub+"'>"...)
	b = appendText(b, doc)
	b = append(b, "</notification></item></items></event></message>"...)
	p.body = b
	return p
}

// appendItemID appends a random item id shaped like the captured ones
// (a UUID followed by digits).
func appendItemID(b []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64() // #nosec G404 -- simulated pubsub item ids, not security
	hi = hi&^(0xf<<12) | 4<<12             // version 4
	lo = lo&^(3<<62) | 2<<62               // RFC 4122 variant
	return fmt.Appendf(b, "%08x-%04x-%04x-%04x-%012x%d",
		hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff, rand.IntN(100000)) // #nosec G404 -- simulated pubsub item ids, not security
}

// idChars are the characters of the per-message id suffix.
const idChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// appendItem appends the complete stanza of a queued item. It runs on the
// writer goroutine, which owns c.rng.
func (c *conn) appendItem(b []byte, it outItem) []byte {
	if it.pub == nil {
		return append(b, it.raw...)
	}
	to := c.bareAttr
	if it.full {
		to = c.fullAttr
	}
	b = append(b, "<message"...)
	b = append(b, c.xmlns...)
	b = append(b, " from='"...)
	b = append(b, c.pubsubAttr...)
	b = append(b, "' to='"...)
	b = append(b, to...)
	b = append(b, "' id='"...)
	b = append(b, it.pub.node...)
	b = append(b, "__"...)
	b = append(b, to...)
	b = append(b, "__"...)
	r := c.rng.Uint64()
	for range 5 {
		b = append(b, idChars[r%uint64(len(idChars))])
		r /= uint64(len(idChars))
	}
	b = append(b, '\'')
	if c.s.cfg.Headline {
		b = append(b, " type='headline'"...)
	}
	return append(b, it.pub.body...)
}

// nodeClass classifies a pubsub node for delivery and subscription.
type nodeClass int

const (
	nodeExplicit nodeClass = iota // needs an explicit subscription
	nodeDefault                   // a user's own node: delivered to the user
	nodeSystem                    // SystemInfo: delivered to everyone
)

// nodeKind classifies a node path: a default node of owner (a canonical
// localpart), SystemInfo, or a node that needs a subscription. ok is false
// for anything that is not a Finesse notification node in canonical form
// (resource URIs such as Dialog/{id} or Team/{id} are not nodes).
func (s *Server) nodeKind(node string) (kind nodeClass, owner string, ok bool) {
	n, err := finesse.ParseNode(node)
	if err != nil || n.String() != node {
		return nodeExplicit, "", false
	}
	switch n.Kind {
	case finesse.NodeSystemInfo:
		return nodeSystem, "", true
	case finesse.NodeUser, finesse.NodeDialogs, finesse.NodeMedia, finesse.NodeUserQueues:
		return nodeDefault, s.canonUser(n.ID), true
	case finesse.NodeMediaDialogs, finesse.NodeTeamUsers, finesse.NodeQueue:
		return nodeExplicit, "", true
	}
	return nodeExplicit, "", false
}

// authorize applies Config.AuthorizeSubscribe, or the default rule: only
// nodes under the user's own /finesse/api/User/{id}.
func (s *Server) authorize(user, node string) error {
	if s.cfg.AuthorizeSubscribe != nil {
		return s.cfg.AuthorizeSubscribe(user, node)
	}
	n, err := finesse.ParseNode(node)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrItemNotFound, err)
	}
	switch n.Kind {
	case finesse.NodeUser, finesse.NodeDialogs, finesse.NodeMediaDialogs, finesse.NodeMedia, finesse.NodeUserQueues:
		if s.canonUser(n.ID) == user {
			return nil
		}
	}
	return fmt.Errorf("%w: %s may not subscribe to %s", ErrForbidden, user, node)
}

// addSubscription stores j's subscription to node; it is idempotent and
// fails only when the bare JID holds MaxSubscriptions already.
func (s *Server) addSubscription(node string, j jid.JID) bool {
	key, bare := j.String(), j.Bare().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.subs[node]
	if _, ok := m[key]; ok {
		return true
	}
	if s.subCount[bare] >= s.cfg.MaxSubscriptions {
		return false
	}
	if m == nil {
		m = make(map[string]subscriber)
		s.subs[node] = m
	}
	m[key] = subscriber{user: j.Localpart(), bare: bare, full: j.Resourcepart() != ""}
	s.subCount[bare]++
	return true
}

// removeSubscription deletes j's subscription to node, reporting whether
// there was one.
func (s *Server) removeSubscription(node string, j jid.JID) bool {
	key := j.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[node][key]
	if !ok {
		return false
	}
	delete(s.subs[node], key)
	if len(s.subs[node]) == 0 {
		delete(s.subs, node)
	}
	if s.subCount[sub.bare]--; s.subCount[sub.bare] <= 0 {
		delete(s.subCount, sub.bare)
	}
	return true
}

// subscriptionsOf returns the (node, jid) pairs stored for a bare JID,
// optionally of one node, sorted.
func (s *Server) subscriptionsOf(bare, node string) [][2]string {
	s.mu.RLock()
	var l [][2]string
	for n, m := range s.subs {
		if node != "" && n != node {
			continue
		}
		for j, sub := range m {
			if sub.bare == bare {
				l = append(l, [2]string{n, j})
			}
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(l, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	return l
}
