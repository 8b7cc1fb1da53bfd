package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"finesse-relay/xmpp/finesse"
)

// Pubsub namespaces (XEP-0060).
const (
	nsPubSub      = "http://jabber.org/protocol/pubsub"
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event"
)

// handle is the Serve handler. It runs on Serve's goroutine with the input
// stream locked: it must not send with the session (that would deadlock),
// only through t. Errors it returns end the session, so it returns only
// errors reading the stream; bad payloads are logged and counted.
func (c *Client) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	now := time.Now() // one clock read per stanza: the pinger's silence and the relay's latency
	c.heardAt.Store(now.UnixNano())
	// The decoder must see the start tag too, or it rejects the end tag.
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	if _, err := d.Token(); err != nil {
		return err
	}
	var err error
	switch start.Name.Local {
	case "message":
		err = c.handleMessage(d, *start, now)
	case "presence":
		c.handlePresence(*start)
	case "iq":
		if c.replay.barrierAnswered(attrValue(*start, "id")) {
			return nil // our own barrier query's answer: nothing else to do
		}
		err = c.handleIQ(d, t, *start)
	}
	// io.EOF from a handler would tell Serve the stream ended cleanly.
	return eofErr(err)
}

func attrValue(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// rawItem is one pubsub item's <notification> content, as wire bytes.
type rawItem struct {
	node    string
	id      string // the <item id>, empty when the service sets none
	content []byte
}

// handleMessage decodes a pubsub event message. Only the pubsub service
// may send events: anything else could be forged by another user.
func (c *Client) handleMessage(d *xml.Decoder, start xml.StartElement, received time.Time) error {
	items, isEvent, delayed, err := readEventItems(d)
	if err != nil {
		return err
	}
	if !isEvent {
		return nil
	}
	if from, err := jid.Parse(attrValue(start, "from")); err != nil || !from.Equal(c.pubsub) {
		n := c.ignored.Add(1)
		if sampled(n) {
			c.log.Warn("ignored a pubsub event from a sender other than the pubsub service",
				zap.String("from", attrValue(start, "from")), zap.Uint64("ignored", n))
		}
		return nil
	}
	for _, it := range items {
		u, err := decodeItem(it)
		if err != nil {
			n := c.malformed.Add(1)
			if sampled(n) {
				c.log.Warn("malformed notification skipped", zap.String("node", it.node),
					zap.Int("bytes", len(it.content)), zap.Uint64("malformed", n), zap.Error(err))
			}
			continue
		}
		u.Replayed = c.replay.replayed(it.node, it.id, delayed)
		c.updates.Add(1)
		u.Received = received
		if c.cfg.OnUpdate != nil {
			c.cfg.OnUpdate(u)
		}
	}
	return nil
}

// sampled limits warnings about hostile input: the first ten, then every
// power of two.
func sampled(n uint64) bool { return n <= 10 || n&(n-1) == 0 }

// errNoNode is returned for an <items> without a node.
var errNoNode = errors.New("xmpp: pubsub <items> without a node")

// decodeItem turns one item into an Update.
func decodeItem(it rawItem) (finesse.Update, error) {
	if it.node == "" {
		return finesse.Update{}, errNoNode
	}
	return finesse.ParseNotification(it.node, it.content)
}

// readEventItems reads the children of a <message> (its start tag already
// consumed) up to its end tag and returns the content of every
// <event xmlns=pubsub#event><items node><item><notification> in order.
// isEvent reports whether the message had a pubsub event at all, delayed
// whether it carried a <delay xmlns='urn:xmpp:delay'/> (a replayed item).
// Errors are errors of the token stream only.
func readEventItems(d *xml.Decoder) (items []rawItem, isEvent, delayed bool, err error) {
	match := func(n xml.Name) bool {
		return (n.Space == nsPubSubEvent && n.Local == "event") ||
			(n.Space == nsDelay && n.Local == "delay") || (n.Space == nsLegacyDelay && n.Local == "x")
	}
	err = eachChild(d, match, func(el xml.StartElement) error {
		if el.Name.Space != nsPubSubEvent {
			delayed = true
			return d.Skip()
		}
		isEvent = true
		return eachChild(d, localIs("items"), func(itemsElem xml.StartElement) error {
			node := attrValue(itemsElem, "node")
			// Items without a <notification> (retractions, empty items) add nothing.
			return eachChild(d, localIs("item"), func(item xml.StartElement) error {
				id := attrValue(item, "id")
				return eachChild(d, localIs("notification"), func(xml.StartElement) error {
					var buf bytes.Buffer
					if err := writeInner(d, &buf); err != nil {
						return err
					}
					items = append(items, rawItem{node: node, id: id, content: buf.Bytes()})
					return nil
				})
			})
		})
	})
	if err != nil {
		return nil, false, false, eofErr(err)
	}
	return items, isEvent, delayed, nil
}

// localIs matches an element by local name (Finesse payloads are matched so).
func localIs(local string) func(xml.Name) bool {
	return func(n xml.Name) bool { return n.Local == local }
}

// eachChild reads the children of the element whose start tag was just
// read, up to its end tag: fn handles each child that match accepts and
// must consume it to its end tag; other children are skipped.
func eachChild(d *xml.Decoder, match func(xml.Name) bool, fn func(xml.StartElement) error) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if !match(t.Name) {
				if err := d.Skip(); err != nil {
					return err
				}
				continue
			}
			if err := fn(t); err != nil {
				return err
			}
		}
	}
}

// writeInner writes the content of the element whose start tag was just
// read, up to (not including) its end tag. Text directly inside it is
// written as decoded: for the escaped form Finesse sends, that text is the
// <Update> document itself, which finesse.ParseNotification then takes as
// inline XML without unescaping it a second time. Inside child elements
// (the inline form) text is escaped again and elements are written without
// namespace declarations (Finesse payloads are matched by local name).
// Comments, processing instructions and directives are dropped.
func writeInner(d *xml.Decoder, buf *bytes.Buffer) error {
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return eofErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			buf.WriteByte('<')
			buf.WriteString(t.Name.Local)
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				buf.WriteByte(' ')
				buf.WriteString(a.Name.Local)
				buf.WriteString(`="`)
				escapeXML(buf, []byte(a.Value))
				buf.WriteByte('"')
			}
			buf.WriteByte('>')
		case xml.EndElement:
			if depth == 0 {
				return nil
			}
			depth--
			buf.WriteString("</")
			buf.WriteString(t.Name.Local)
			buf.WriteByte('>')
		case xml.CharData:
			if depth == 0 {
				buf.Write(t)
			} else {
				escapeXML(buf, t)
			}
		}
	}
}

// escapeXML writes b with &, <, > and " escaped. Unlike xml.EscapeText it
// leaves whitespace alone, so that the inline form keeps looking like XML.
func escapeXML(buf *bytes.Buffer, b []byte) {
	last := 0
	for i, c := range b {
		var esc string
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		default:
			continue
		}
		buf.Write(b[last:i])
		buf.WriteString(esc)
		last = i + 1
	}
	buf.Write(b[last:])
}

func eofErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// handlePresence tracks the presence of the Finesse service user (any
// resource) and reports changes of its availability.
func (c *Client) handlePresence(start xml.StartElement) {
	from, err := jid.Parse(attrValue(start, "from"))
	if err != nil || !from.Bare().Equal(c.service) {
		return
	}
	switch attrValue(start, "type") {
	case "":
		c.svcRes[from.Resourcepart()] = struct{}{}
	case "unavailable":
		if from.Resourcepart() == "" {
			clear(c.svcRes)
		} else {
			delete(c.svcRes, from.Resourcepart())
		}
	default:
		return // subscription management, errors
	}
	avail := len(c.svcRes) > 0
	if c.svcKnown && avail == c.svcAvail {
		return
	}
	c.svcKnown, c.svcAvail = true, avail
	c.log.Info("finesse service presence", zap.Bool("available", avail))
	if c.cfg.OnServicePresence != nil {
		c.cfg.OnServicePresence(avail)
	}
}

// handleIQ answers XEP-0199 pings from the server. mellium answers other
// get and set IQs with service-unavailable.
func (c *Client) handleIQ(d *xml.Decoder, w xmlstream.TokenWriter, start xml.StartElement) error {
	if attrValue(start, "type") != "get" {
		return nil
	}
	var child xml.StartElement
	for child.Name.Local == "" {
		tok, err := d.Token()
		if err != nil {
			return eofErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			child = t
		case xml.EndElement:
			return nil // an empty IQ: mellium answers it
		}
	}
	if child.Name.Space != nsPing || child.Name.Local != "ping" {
		return nil
	}
	attrs := []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "result"},
		{Name: xml.Name{Local: "id"}, Value: attrValue(start, "id")},
	}
	if from := attrValue(start, "from"); from != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "to"}, Value: from})
	}
	iq := xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: attrs}
	if err := w.EncodeToken(iq); err != nil {
		return fmt.Errorf("xmpp: answer ping: %w", err)
	}
	if err := w.EncodeToken(iq.End()); err != nil {
		return fmt.Errorf("xmpp: answer ping: %w", err)
	}
	return nil
}

// checkNode validates a node name given to Subscribe or Unsubscribe.
func checkNode(node string) error {
	if node == "" || len(node) > maxNodeLen || strings.ContainsFunc(node, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: bad node %q", ErrConfig, node)
	}
	return nil
}
