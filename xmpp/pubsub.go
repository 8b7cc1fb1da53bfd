package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Subscription is one XEP-0060 subscription as the pubsub service lists
// it.
type Subscription struct {
	Node  string // e.g. /finesse/api/Team/10/Users
	JID   string // the subscribed JID: bare, or full with a resource
	SubID string // subscription id, empty when the service uses none
	State string // "subscribed", "pending", "unconfigured" or "none"
}

type subscriptionXML struct {
	Node  string `xml:"node,attr"`
	JID   string `xml:"jid,attr"`
	SubID string `xml:"subid,attr"`
	State string `xml:"subscription,attr"`
}

// Subscribe subscribes our full JID to node (XEP-0060 6.1), so that the
// events of explicitly subscribed nodes (Team users, queues) reach this
// session only. Close unsubscribes every node subscribed this way.
// Subscribing a node twice sends nothing the second time. Like every IQ
// method it needs Run to be serving the stream: the answer is read by Run;
// if the session ends while it waits, it returns the *SessionError saying
// why. Errors from the service are stanza.Error values (for example
// forbidden for a team the user does not supervise), wrapped.
func (c *Client) Subscribe(ctx context.Context, node string) error {
	if err := c.usable(node); err != nil {
		return fmt.Errorf("xmpp: subscribe: %w", err)
	}
	c.mu.Lock()
	_, dup := c.subs[node]
	c.mu.Unlock()
	if dup {
		return nil
	}
	var resp struct {
		PubSub struct {
			Sub *subscriptionXML `xml:"subscription"`
		} `xml:"http://jabber.org/protocol/pubsub pubsub"`
	}
	// Items of node that arrive before the answer are replays (the server's
	// last published item), not changes.
	c.replay.begin(node)
	answered := sync.OnceFunc(func() { c.replay.end(node) })
	defer answered()
	if err := c.iqThen(ctx, stanza.SetIQ, pubsubOp("subscribe", node, c.jid.String(), ""), &resp, answered); err != nil {
		return fmt.Errorf("xmpp: subscribe %q: %w", node, err)
	}
	subid := ""
	if s := resp.PubSub.Sub; s != nil {
		if s.State == "none" {
			return fmt.Errorf("xmpp: subscribe %q: service answered subscription %q", node, s.State)
		}
		subid = s.SubID
	}
	c.mu.Lock()
	c.subs[node] = subid
	c.mu.Unlock()
	return nil
}

// Unsubscribe removes our full JID's subscription to node (XEP-0060 6.2).
func (c *Client) Unsubscribe(ctx context.Context, node string) error {
	if err := c.usable(node); err != nil {
		return fmt.Errorf("xmpp: unsubscribe: %w", err)
	}
	c.mu.Lock()
	subid := c.subs[node]
	c.mu.Unlock()
	if err := c.unsubscribe(ctx, node, subid); err != nil {
		return fmt.Errorf("xmpp: unsubscribe %q: %w", node, err)
	}
	return nil
}

// unsubscribe sends the unsubscribe IQ and forgets the subscription.
func (c *Client) unsubscribe(ctx context.Context, node, subid string) error {
	err := c.iq(ctx, stanza.SetIQ, pubsubOp("unsubscribe", node, c.jid.String(), subid), nil)
	var se stanza.Error
	if err == nil || (errors.As(err, &se) && se.Condition == stanza.UnexpectedRequest) {
		// unexpected-request is "not subscribed": the goal is reached.
		c.mu.Lock()
		delete(c.subs, node)
		c.mu.Unlock()
	}
	return err
}

// Subscriptions lists the subscriptions the pubsub service holds for our
// user (XEP-0060 5.6): those of every resource and of the bare JID, not
// only this session's.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	if c.closing() {
		return nil, fmt.Errorf("xmpp: subscriptions: %w", ErrClosed)
	}
	var resp struct {
		PubSub struct {
			Subs struct {
				List []subscriptionXML `xml:"subscription"`
			} `xml:"subscriptions"`
		} `xml:"http://jabber.org/protocol/pubsub pubsub"`
	}
	payload := xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "subscriptions"}}),
		xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}},
	)
	if err := c.iq(ctx, stanza.GetIQ, payload, &resp); err != nil {
		return nil, fmt.Errorf("xmpp: subscriptions: %w", err)
	}
	out := make([]Subscription, 0, len(resp.PubSub.Subs.List))
	for _, s := range resp.PubSub.Subs.List {
		out = append(out, Subscription(s))
	}
	return out, nil
}

// PruneSubscriptions unsubscribes every subscription of our full JID
// (same user, same resource) whose node is not in keep: subscriptions
// outlive sessions, so an earlier session of this relay may have left
// some. Subscriptions of other resources (the Finesse desktop's
// "desktop") and of the bare JID (Finesse's own default subscriptions) are
// never touched. It returns how many were removed; errors of single
// unsubscriptions are joined and the others are still tried.
func (c *Client) PruneSubscriptions(ctx context.Context, keep []string) (removed int, err error) {
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		return 0, fmt.Errorf("xmpp: prune: %w", err)
	}
	var errs []error
	for _, s := range subs {
		j, err := jid.Parse(s.JID)
		if err != nil || !j.Equal(c.jid) || slices.Contains(keep, s.Node) {
			continue
		}
		if err := c.unsubscribe(ctx, s.Node, s.SubID); err != nil {
			errs = append(errs, fmt.Errorf("xmpp: prune %q: %w", s.Node, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// usable checks node and that Close was not called.
func (c *Client) usable(node string) error {
	if c.closing() {
		return ErrClosed
	}
	return checkNode(node)
}

// pubsubOp is <pubsub xmlns=pubsub><op node jid [subid]/></pubsub>.
func pubsubOp(op, node, jidStr, subid string) xml.TokenReader {
	attrs := []xml.Attr{
		{Name: xml.Name{Local: "node"}, Value: node},
		{Name: xml.Name{Local: "jid"}, Value: jidStr},
	}
	if subid != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "subid"}, Value: subid})
	}
	return xmlstream.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: op}, Attr: attrs}),
		xml.StartElement{Name: xml.Name{Space: nsPubSub, Local: "pubsub"}},
	)
}

// iq sends an IQ to the pubsub service and waits for the answer, which Run
// reads. An error answer is returned as a stanza.Error; a result is
// decoded into v (the whole <iq>) unless v is nil.
// If the session ends while waiting, the *SessionError saying why is
// returned.
func (c *Client) iq(ctx context.Context, typ stanza.IQType, payload xml.TokenReader, v any) error {
	return c.iqThen(ctx, typ, payload, v, nil)
}

// iqThen is iq, calling answered (if not nil) once the answer is decoded
// and before the stream handler may read the next stanza.
func (c *Client) iqThen(ctx context.Context, typ stanza.IQType, payload xml.TokenReader, v any, answered func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(c.life, func() { cancel(context.Cause(c.life)) })
	defer stop()
	resp, err := c.sess.SendIQElement(ctx, payload, stanza.IQ{Type: typ, To: c.pubsub})
	if err != nil {
		if c.life.Err() != nil {
			return context.Cause(c.life)
		}
		return err
	}
	defer resp.Close() // releases mellium's Serve to read the next stanza
	if answered != nil {
		defer answered() // runs before resp.Close
	}
	d := xml.NewTokenDecoder(resp)
	tok, err := d.Token()
	if err != nil {
		return eofErr(err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return fmt.Errorf("xmpp: iq answer starts with %T", tok)
	}
	return decodeIQAnswer(d, start, v)
}

// decodeIQAnswer decodes an <iq> answer whose start tag was read.
func decodeIQAnswer(d *xml.Decoder, start xml.StartElement, v any) error {
	switch typ := attrValue(start, "type"); typ {
	case string(stanza.ResultIQ):
		if v == nil {
			return d.Skip()
		}
		return d.DecodeElement(v, &start)
	case string(stanza.ErrorIQ):
		var wrapper struct {
			Err *stanza.Error `xml:"error"`
		}
		if err := d.DecodeElement(&wrapper, &start); err != nil {
			return err
		}
		if wrapper.Err == nil {
			return stanza.Error{Condition: stanza.UndefinedCondition}
		}
		return *wrapper.Err
	default:
		return fmt.Errorf("xmpp: iq answer of type %q", typ)
	}
}
