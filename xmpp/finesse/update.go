package finesse

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Event says what happened to the object a notification describes.
type Event string

// The three events Finesse sends. Finesse documentation shows both upper and
// lower case; ParseUpdate normalises to these upper-case values.
const (
	EventPut    Event = "PUT"    // the object changed
	EventPost   Event = "POST"   // a member was added to a collection
	EventDelete Event = "DELETE" // a member was removed from a collection
)

// Update is one Finesse notification: the decoded <Update> envelope.
type Update struct {
	// Node is the pubsub node the notification arrived on, e.g.
	// /finesse/api/User/1001/Dialogs. It is set by the transport, not by the
	// envelope.
	Node string
	// Event is PUT, POST or DELETE (always upper case).
	Event Event
	// Source is the URI of the object that changed (<source>).
	Source string
	// RequestID is the requestId header of the REST request that caused the
	// notification, empty when unsolicited.
	RequestID string
	// Data is the XML of the single object element inside <data> (for
	// example "<user>...</user>" or "<apiErrors>...</apiErrors>"), empty when
	// the notification carries no data. The bytes are those of the document,
	// still escaped as XML (an "&" in a value is "&amp;" here), and never
	// share memory with the input. DecodeData turns them into an Object.
	Data []byte
	// Replayed is set by the transport when the notification is a replay
	// of an earlier item, not a fresh change: the server re-sends a node's
	// last item on subscribe or on presence (XEP-0060 last published item;
	// ejabberd does, Prosody can). Its RequestID is stale: a replay is the
	// node's current state, never the answer to a pending request.
	Replayed bool
	// Received is when the transport read the message that carried the
	// notification (zero when unknown, e.g. parsed from a document). The
	// relay measures its own latency from it.
	Received time.Time
}

// ParseUpdate decodes an <Update> document (already unescaped: the text a
// <notification> carries, or inline XML). Element names are matched
// case-insensitively (<Update>, <update>, <requestId>, <requestid>), the
// order of children is free, the event is upper-cased and must be PUT, POST
// or DELETE, and <source> and <requestId> are trimmed of surrounding
// whitespace. <data> may be absent or empty, or hold exactly one element.
// Unknown children are skipped. The document may be at most MaxUpdateSize
// bytes and MaxDepth elements deep.
//
// Errors wrap ErrMalformedUpdate (and ErrLimit for a limit).
func ParseUpdate(node string, doc []byte) (Update, error) {
	if len(doc) > MaxUpdateSize {
		return Update{}, fmt.Errorf("%w: %w: %d bytes exceeds the %d byte limit", ErrMalformedUpdate, ErrLimit, len(doc), MaxUpdateSize)
	}
	u, err := parseUpdate(doc)
	if err != nil {
		return Update{}, fmt.Errorf("%w: %w", ErrMalformedUpdate, err)
	}
	u.Node = node
	return u, nil
}

func parseUpdate(doc []byte) (Update, error) {
	var u Update
	dec := xml.NewDecoder(bytes.NewReader(doc))
	start, _, err := firstStart(dec)
	if err != nil {
		return u, err
	}
	if !strings.EqualFold(start.Name.Local, "Update") {
		return u, fmt.Errorf("root element <%s>, want <Update>", start.Name.Local)
	}
	var seen [4]bool // data, event, source, requestId
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return u, io.ErrUnexpectedEOF
		}
		if err != nil {
			return u, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isSpace(t) {
				return u, fmt.Errorf("text %s in <%s>", quoteSnippet(t), start.Name.Local)
			}
		case xml.EndElement:
			if u.Event == "" {
				return u, fmt.Errorf("no <event>")
			}
			if err := expectEOF(dec); err != nil {
				return u, err
			}
			return u, nil
		case xml.StartElement:
			name := t.Name.Local
			i := -1
			switch {
			case strings.EqualFold(name, "data"):
				i = 0
			case strings.EqualFold(name, "event"):
				i = 1
			case strings.EqualFold(name, "source"):
				i = 2
			case strings.EqualFold(name, "requestId"):
				i = 3
			}
			if i < 0 {
				if err := skip(dec, 2); err != nil {
					return u, fmt.Errorf("<%s>: %w", name, err)
				}
				continue
			}
			if seen[i] { // #nosec G602 -- i is 0..3 here (i < 0 continued above) and seen has 4 slots
				return u, fmt.Errorf("more than one <%s>", name)
			}
			seen[i] = true // #nosec G602 -- i is 0..3 here (i < 0 continued above) and seen has 4 slots
			if i == 0 {
				data, err := readData(dec, doc)
				if err != nil {
					return u, fmt.Errorf("<%s>: %w", name, err)
				}
				u.Data = data
				continue
			}
			text, err := readText(dec)
			if err != nil {
				return u, fmt.Errorf("<%s>: %w", name, err)
			}
			switch i {
			case 1:
				switch ev := Event(strings.ToUpper(text)); ev {
				case EventPut, EventPost, EventDelete:
					u.Event = ev
				default:
					return u, fmt.Errorf("<%s> %s is not PUT, POST or DELETE", name, quoteSnippet([]byte(text)))
				}
			case 2:
				u.Source = text
			case 3:
				u.RequestID = text
			}
		}
	}
}

// readData reads the content of <data> (its start tag already consumed)
// and returns a copy of the one element inside, or nil when there is none.
func readData(dec *xml.Decoder, doc []byte) ([]byte, error) {
	var data []byte
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, eof(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return data, nil
		case xml.CharData:
			if !isSpace(t) {
				return nil, fmt.Errorf("text %s outside the object element", quoteSnippet(t))
			}
		case xml.StartElement:
			if data != nil {
				return nil, fmt.Errorf("a second object element <%s>", t.Name.Local)
			}
			if err := skip(dec, 3); err != nil {
				return nil, fmt.Errorf("<%s>: %w", t.Name.Local, err)
			}
			data = bytes.Clone(doc[off:dec.InputOffset()])
		}
	}
}

// readText returns the trimmed character data of an element whose start
// tag was consumed; child elements are an error.
func readText(dec *xml.Decoder) (string, error) {
	var b []byte
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", eof(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return string(bytes.TrimSpace(b)), nil
		case xml.CharData:
			b = append(b, t...)
		case xml.StartElement:
			return "", fmt.Errorf("unexpected element <%s>", t.Name.Local)
		}
	}
}

// skip consumes the rest of an element whose start tag was consumed at
// nesting depth depth, enforcing MaxDepth (xml.Decoder.Skip has no limit).
func skip(dec *xml.Decoder, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: elements nested deeper than %d", ErrLimit, MaxDepth)
	}
	open := 1
	for open > 0 {
		tok, err := dec.Token()
		if err != nil {
			return eof(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			open++
			if depth+open-1 > MaxDepth {
				return fmt.Errorf("%w: elements nested deeper than %d", ErrLimit, MaxDepth)
			}
		case xml.EndElement:
			open--
		}
	}
	return nil
}

func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseNotification decodes the content of a pubsub <notification> element
// exactly as it arrived on the wire: the bytes between <notification ...>
// and </notification>, not yet unescaped. Both forms Finesse is known to
// use are accepted:
//
//   - escaped text, the Cisco form: "&lt;Update&gt;&lt;data&gt;..." (or the
//     same inside a CDATA section), which is unescaped once and then parsed;
//   - inline XML: "<Update><data>...</Update>", parsed as it is.
//
// A caller whose XML decoder has already unescaped the element's character
// data may pass that text instead: it is the inline form, and gives the
// same result. Values are never unescaped twice: "&amp;amp;" on the wire is
// "&amp;" in Update.Data and "&" after DecodeData.
//
// The content may be at most MaxNotificationSize bytes; the Update it holds
// obeys ParseUpdate's limits. Errors wrap ErrMalformedUpdate.
func ParseNotification(node string, notification []byte) (Update, error) {
	if len(notification) > MaxNotificationSize {
		return Update{}, fmt.Errorf("%w: %w: notification of %d bytes exceeds the %d byte limit", ErrMalformedUpdate, ErrLimit, len(notification), MaxNotificationSize)
	}
	body := bytes.TrimLeft(notification, " \t\r\n")
	if len(body) > 0 && body[0] == '<' && !bytes.HasPrefix(body, []byte("<![CDATA[")) {
		return ParseUpdate(node, body) // inline XML
	}
	doc, err := unescapeText(notification)
	if err != nil {
		return Update{}, fmt.Errorf("%w: notification text: %w", ErrMalformedUpdate, err)
	}
	return ParseUpdate(node, doc)
}

// unescapeText returns the character data of an XML fragment that must
// hold nothing but text, entity references and CDATA sections.
func unescapeText(b []byte) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	out := make([]byte, 0, len(b))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(out)+len(t) > MaxUpdateSize {
				return nil, fmt.Errorf("%w: unescaped Update exceeds the %d byte limit", ErrLimit, MaxUpdateSize)
			}
			out = append(out, t...)
		case xml.StartElement:
			return nil, fmt.Errorf("element <%s> mixed with escaped text", t.Name.Local)
		}
	}
}

// EncodeUpdate writes u as the <Update> document Finesse sends:
//
//	<Update><data>…</data><event>PUT</event><requestId>…</requestId><source>…</source></Update>
//
// Data is copied verbatim and must be one well-formed element (EncodeData's
// output) or empty, in which case <data> is left out as Finesse does when a
// user is deleted. Node is not part of the document. To carry the result
// inside a <notification> the way Cisco does, write it as character data
// (an xml.Encoder or xml.EscapeText escapes it).
//
// For any u that ParseUpdate returned, ParseUpdate(u.Node, EncodeUpdate(u))
// returns u again.
func EncodeUpdate(u Update) []byte {
	var b bytes.Buffer
	b.Grow(len(u.Data) + len(u.Source) + len(u.RequestID) + 96)
	b.WriteString("<Update>")
	if len(u.Data) > 0 {
		b.WriteString("<data>")
		b.Write(u.Data)
		b.WriteString("</data>")
	}
	b.WriteString("<event>")
	_ = xml.EscapeText(&b, []byte(u.Event))
	b.WriteString("</event><requestId>")
	_ = xml.EscapeText(&b, []byte(u.RequestID))
	b.WriteString("</requestId><source>")
	_ = xml.EscapeText(&b, []byte(u.Source))
	b.WriteString("</source></Update>")
	return b.Bytes()
}
