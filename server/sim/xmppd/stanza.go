package xmppd

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"mellium.im/xmpp/jid"
)

// element is one decoded client element: its name, attributes, text and
// child elements. Client stanzas are small (MaxStanzaSize) and shallow
// (maxDepth), so they are decoded whole before they are handled.
type element struct {
	name     xml.Name
	attr     []xml.Attr
	text     []byte
	children []*element
}

// get returns the value of the unqualified attribute local, or "".
func (e *element) get(local string) string {
	for _, a := range e.attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child returns the first child element named {space}local, or nil.
func (e *element) child(space, local string) *element {
	for _, c := range e.children {
		if c.name.Local == local && c.name.Space == space {
			return c
		}
	}
	return nil
}

// readElement decodes the element that start opens from r, which must
// yield the rest of it. Nesting deeper than maxDepth fails with
// errTooDeep.
func readElement(r xml.TokenReader, start xml.StartElement) (*element, error) {
	root := &element{name: start.Name, attr: start.Attr}
	stack := []*element{root}
	for len(stack) > 0 {
		tok, err := r.Token()
		if err != nil {
			return nil, err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w (%d levels)", errTooDeep, maxDepth)
			}
			e := &element{name: t.Name, attr: t.Attr}
			top.children = append(top.children, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.text = append(top.text, t...)
		}
	}
	return root, nil
}

// readLoop reads and handles client stanzas until the stream ends. Its
// error says why: io.EOF for the client's stream end, a streamError for a
// protocol violation, else the transport's error.
func (c *conn) readLoop() error {
	r := c.sess.TokenReader()
	defer r.Close()
	for {
		c.lim.reset()
		tok, err := r.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData: // whitespace keepalive (mellium rejects other text)
		case xml.StartElement:
			el, err := readElement(r, t)
			if err != nil {
				return err
			}
			if err := c.handle(el); err != nil {
				return err
			}
		default:
			return streamBadFormat
		}
	}
}

// handle dispatches one top-level client element. A non-nil error ends
// the stream.
func (c *conn) handle(el *element) error {
	if c.ws && el.name == (xml.Name{Space: nsFraming, Local: "close"}) {
		return io.EOF // RFC 7395 stream end
	}
	if el.name.Space != nsClient && el.name.Space != "" {
		return streamUnsupportedStnza
	}
	switch el.name.Local {
	case "iq":
		c.handleIQ(el)
	case "presence":
		c.handlePresence(el)
	case "message":
		// Finesse clients send none; nothing is routed between users.
	default:
		return streamUnsupportedStnza
	}
	return nil
}

// handlePresence tracks the session's broadcast presence. Directed
// presence and subscription management are ignored (Finesse clients use
// neither); presence is not echoed or broadcast.
func (c *conn) handlePresence(el *element) {
	if el.get("to") != "" {
		return
	}
	switch el.get("type") {
	case "":
		prio := 0
		if p := el.child(el.name.Space, "priority"); p != nil {
			if v, err := strconv.ParseInt(strings.TrimSpace(string(p.text)), 10, 8); err == nil {
				prio = int(v)
			}
		}
		c.s.setPresence(c, true, prio)
	case "unavailable":
		c.s.setPresence(c, false, 0)
	}
}

// target is who an IQ is addressed to.
type target int

const (
	targetServer target = iota // no 'to', the domain, or the user's own JID
	targetPubSub               // the pubsub service
	targetOther                // anyone else (not routed)
)

// handleIQ answers a get or set IQ; results and errors are ignored. Every
// get or set gets exactly one response.
func (c *conn) handleIQ(el *element) {
	id, typ := el.get("id"), el.get("type")
	if typ != "get" && typ != "set" {
		return
	}
	from, tgt, ok := c.iqTarget(el.get("to"))
	if !ok {
		c.reply(c.iqError(from, id, errBadRequest))
		return
	}
	var payload *element
	if len(el.children) > 0 {
		payload = el.children[0]
	}
	switch {
	case payload == nil || len(el.children) > 1:
		c.reply(c.iqError(from, id, errBadRequest))
	case tgt == targetOther:
		c.reply(c.iqError(from, id, errServiceUnavailable))
	case typ == "get" && payload.name == xml.Name{Space: nsPing, Local: "ping"}:
		c.reply(c.iqResult(from, id, nil))
	case typ == "get" && payload.name == xml.Name{Space: nsDiscoInfo, Local: "query"}:
		c.reply(c.iqResult(from, id, discoInfo(tgt, payload.get("node"))))
	case typ == "set" && tgt == targetServer && payload.name == xml.Name{Space: nsSession, Local: "session"}:
		c.reply(c.iqResult(from, id, nil))
	case tgt == targetPubSub && payload.name == xml.Name{Space: nsPubSub, Local: "pubsub"}:
		res, serr := c.pubsub(typ, payload)
		if serr != nil {
			c.reply(c.iqError(from, id, *serr))
			return
		}
		c.reply(c.iqResult(from, id, res))
	default:
		c.reply(c.iqError(from, id, errServiceUnavailable))
	}
}

// iqTarget classifies an IQ's 'to' and returns the 'from' of the answer
// (the canonical 'to', or "" when there was none). ok is false for an
// unparsable address.
func (c *conn) iqTarget(to string) (from string, tgt target, ok bool) {
	if to == "" {
		return "", targetServer, true
	}
	j, err := jid.Parse(to)
	if err != nil {
		return "", targetOther, false
	}
	switch {
	case j.Equal(c.s.addr.pubsub):
		return j.String(), targetPubSub, true
	case j.Equal(c.s.addr.domain), j.Equal(c.jid.Bare()), j.Equal(c.jid):
		return j.String(), targetServer, true
	}
	return j.String(), targetOther, true
}

// reply queues a response stanza, dropping the connection if its queue
// is full.
func (c *conn) reply(b []byte) {
	if !c.enqueue(outItem{raw: b}) {
		c.s.dropFull([]*conn{c})
	}
}

// iqStart appends the start of a response IQ.
func (c *conn) iqStart(b []byte, typ, from, id string) []byte {
	b = append(b, "<iq"...)
	b = append(b, c.xmlns...)
	b = append(b, " type='"...)
	b = append(b, typ...)
	b = append(b, "' id='"...)
	b = appendAttr(b, id)
	if from != "" {
		b = append(b, "' from='"...)
		b = appendAttr(b, from)
	}
	b = append(b, "' to='"...)
	b = append(b, c.fullAttr...)
	return append(b, '\'')
}

// iqResult builds a result IQ with an optional payload.
func (c *conn) iqResult(from, id string, payload []byte) []byte {
	b := c.iqStart(make([]byte, 0, 128+len(payload)), "result", from, id)
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	return append(b, "</iq>"...)
}

// iqError builds an error IQ.
func (c *conn) iqError(from, id string, e stanzaErr) []byte {
	b := c.iqStart(make([]byte, 0, 256), "error", from, id)
	b = append(b, '>')
	b = appendStanzaErr(b, e)
	return append(b, "</iq>"...)
}

// discoInfo is the XEP-0030 answer of the server or the pubsub service.
func discoInfo(tgt target, node string) []byte {
	b := []byte("<query xmlns='" + nsDiscoInfo + "'")
	if node != "" {
		b = append(b, " node='"...)
		b = appendAttr(b, node)
		b = append(b, '\'')
	}
	b = append(b, '>')
	if tgt == targetPubSub {
		b = append(b, "<identity category='pubsub' type='service' name='Finesse Notification Service'/>"+
			"<feature var='"+nsDiscoInfo+"'/><feature var='"+nsPubSub+"'/>"+
			"<feature var='"+nsPubSub+"#subscribe'/><feature var='"+nsPubSub+"#retrieve-subscriptions'/>"...)
	} else {
		b = append(b, "<identity category='server' type='im' name='Finesse simulator'/>"+
			"<feature var='"+nsDiscoInfo+"'/><feature var='"+nsPing+"'/>"...)
	}
	return append(b, "</query>"...)
}

// pubsub handles a XEP-0060 request: subscribe and unsubscribe (set),
// retrieve subscriptions (get). It returns the result payload or a stanza
// error.
func (c *conn) pubsub(typ string, ps *element) ([]byte, *stanzaErr) {
	var op *element
	for _, ch := range ps.children {
		if ch.name.Space == nsPubSub {
			op = ch
			break
		}
	}
	if op == nil {
		return nil, &errBadRequest
	}
	switch {
	case typ == "set" && op.name.Local == "subscribe":
		return c.subscribe(op)
	case typ == "set" && op.name.Local == "unsubscribe":
		return c.unsubscribe(op)
	case typ == "get" && op.name.Local == "subscriptions":
		return c.subscriptions(op.get("node")), nil
	}
	return nil, &stanzaErr{typ: "cancel", cond: "feature-not-implemented"}
}

// subTarget validates the node and jid attributes of a subscribe or
// unsubscribe request. def reports a default node of the user, which
// needs no subscription.
func (c *conn) subTarget(op *element) (node string, j jid.JID, def bool, serr *stanzaErr) {
	node = op.get("node")
	if node == "" {
		return "", j, false, &errNodeRequired
	}
	js := op.get("jid")
	if js == "" {
		return "", j, false, &errJIDRequired
	}
	j, err := jid.Parse(js)
	if err != nil {
		return "", j, false, &errInvalidJID
	}
	if !j.Bare().Equal(c.jid.Bare()) || (j.Resourcepart() != "" && !j.Equal(c.jid)) {
		return "", j, false, &errForbidden
	}
	kind, owner, ok := c.s.nodeKind(node)
	if !ok {
		return "", j, false, &errItemNotFound
	}
	def = kind == nodeSystem || kind == nodeDefault && owner == c.user
	return node, j, def, nil
}

// subscribe stores an explicit subscription (after authorization) and
// answers with it. A default node is answered as subscribed without
// storing anything.
func (c *conn) subscribe(op *element) ([]byte, *stanzaErr) {
	node, j, def, serr := c.subTarget(op)
	if serr != nil {
		return nil, serr
	}
	if !def {
		if err := c.s.authorize(c.user, node); err != nil {
			c.log.Debug("subscription refused", zap.String("node", node), zap.Error(err))
			if errors.Is(err, ErrItemNotFound) {
				return nil, &errItemNotFound
			}
			return nil, &errForbidden
		}
		if !c.s.addSubscription(node, j) {
			return nil, &errPolicyViolation
		}
	}
	b := []byte("<pubsub xmlns='" + nsPubSub + "'>")
	b = appendSubscription(b, node, j.String())
	return append(b, "</pubsub>"...), nil
}

// unsubscribe removes an explicit subscription. Default nodes cannot be
// left: the request succeeds and changes nothing.
func (c *conn) unsubscribe(op *element) ([]byte, *stanzaErr) {
	node, j, def, serr := c.subTarget(op)
	if serr != nil {
		return nil, serr
	}
	if !def && !c.s.removeSubscription(node, j) {
		return nil, &errNotSubscribed
	}
	return nil, nil
}

// subscriptions lists the explicit subscriptions of the user's bare JID
// and of any of its full JIDs, optionally only those of one node.
func (c *conn) subscriptions(node string) []byte {
	b := []byte("<pubsub xmlns='" + nsPubSub + "'><subscriptions")
	if node != "" {
		b = append(b, " node='"...)
		b = appendAttr(b, node)
		b = append(b, '\'')
	}
	b = append(b, '>')
	for _, s := range c.s.subscriptionsOf(c.jid.Bare().String(), node) {
		b = appendSubscription(b, s[0], s[1])
	}
	return append(b, "</subscriptions></pubsub>"...)
}

// appendSubscription appends one XEP-0060 <subscription/> element.
func appendSubscription(b []byte, node, j string) []byte {
	b = append(b, "<subscription node='"...)
	b = appendAttr(b, node)
	b = append(b, "' jid='"...)
	b = appendAttr(b, j)
	return append(b, "' subscription='subscribed'/>"...)
}
