package bosh

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"finesse-relay/xmpp/bosh/wire"
)

// Body is one parsed XEP-0124 <body/> wrapper element.
//
// Only the attributes this package uses are kept. Durations are given in
// seconds on the wire; a missing attribute leaves the zero value.
type Body struct {
	SID       string // sid: the session id (session creation response)
	RID       uint64 // rid: request id (requests only)
	Type      string // type: "terminate", "error" or empty
	Condition string // condition: the terminal binding condition, if any
	From      string // from: the domain that answers
	AuthID    string // authid: the XMPP stream id (XEP-0206)
	Ver       string // ver: highest BOSH version the sender supports
	Restart   bool   // xmpp:restart='true' (XEP-0206 restart request)

	Wait       time.Duration // wait: longest time the server holds a request
	Inactivity time.Duration // inactivity: longest time with no request in flight
	Polling    time.Duration // polling: shortest allowed interval between empty polls
	MaxPause   time.Duration // maxpause: longest pause the client may request
	Hold       int           // hold: requests the server may keep waiting
	Requests   int           // requests: requests the client may have in flight

	// Payload holds each child element of the body, serialized so that it can
	// stand on its own inside an XMPP stream: namespace prefixes declared on
	// the body and used by a child are declared on the child.
	Payload [][]byte
}

// ParseBody parses data, which must hold exactly one <body/> element in the
// http://jabber.org/protocol/httpbind namespace (an XML declaration and
// surrounding whitespace are allowed). Errors wrap ErrProtocol.
//
// ParseBody does not limit the size of data; callers do (Config.MaxBodySize).
// Element nesting is limited to 256 levels, DTDs and entity declarations are
// refused.
func ParseBody(data []byte) (*Body, error) {
	wb, err := wire.ParseBody(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	b, err := bodyAttrs(wb.Attr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	b.Payload = wb.Payload
	return b, nil
}

// bodyAttrs reads the attributes of a <body/> start tag.
func bodyAttrs(attrs []xml.Attr) (*Body, error) {
	b := &Body{}
	for _, a := range attrs {
		var err error
		switch {
		case wire.IsRestart(a):
			b.Restart = true
		case a.Name.Space != "":
			// xmlns:*, xml:lang, xmpp:version, xmpp:restartlogic, …: not needed.
		default:
			switch a.Name.Local {
			case "sid":
				b.SID = a.Value
			case "rid":
				b.RID, err = strconv.ParseUint(a.Value, 10, 64)
			case "type":
				b.Type = a.Value
			case "condition":
				b.Condition = a.Value
			case "from":
				b.From = a.Value
			case "authid":
				b.AuthID = a.Value
			case "ver":
				b.Ver = a.Value
			case "wait":
				b.Wait, err = wire.ParseSeconds(a.Value)
			case "inactivity":
				b.Inactivity, err = wire.ParseSeconds(a.Value)
			case "polling":
				b.Polling, err = wire.ParseSeconds(a.Value)
			case "maxpause":
				b.MaxPause, err = wire.ParseSeconds(a.Value)
			case "hold":
				b.Hold, err = smallInt(a.Value)
			case "requests":
				b.Requests, err = smallInt(a.Value)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name.Local, err)
		}
	}
	return b, nil
}

func smallInt(v string) (int, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	return int(n), err
}

// bodyWriter builds request bodies.
type bodyWriter struct{ bytes.Buffer }

func (w *bodyWriter) attr(name, value string) {
	w.WriteByte(' ')                      // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	w.WriteString(name)                   // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	w.WriteString("='")                   // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	w.WriteString(wire.EscapeAttr(value)) // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	w.WriteByte('\'')                     // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
}

// open writes "<body" and the attributes common to every request.
func (w *bodyWriter) open(rid uint64, sid string) {
	w.WriteString("<body") // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	w.attr("rid", strconv.FormatUint(rid, 10))
	if sid != "" {
		w.attr("sid", sid)
	}
}

// close ends the body start tag, writes the payload and the end tag.
func (w *bodyWriter) close(payload [][]byte) []byte {
	w.attr("xmlns", wire.NSHTTPBind)
	if len(payload) == 0 {
		w.WriteString("/>") // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
		return w.Bytes()
	}
	w.WriteByte('>') // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	for _, p := range payload {
		w.Write(p) // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	}
	w.WriteString("</body>") // #nosec G104 -- bodyWriter is a bytes.Buffer: its writes never fail
	return w.Bytes()
}
