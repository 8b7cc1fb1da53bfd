package boshd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"finesse-relay/xmpp/bosh/wire"
)

// maxRID bounds request ids (XEP-0124 §7: below 2^53).
const maxRID = 1 << 53

// request is a parsed client <body/>.
type request struct {
	rid      uint64
	sid      string
	to       string
	typ      string // "terminate" or empty
	lang     string
	ver      string
	hold     int // -1 when absent
	wait     time.Duration
	restart  bool     // xmpp:restart='true'
	payload  [][]byte // child elements, each standing alone
	hasHold  bool
	hasWait  bool
	hasPause bool
}

// parseRequest parses a request body: exactly one <body/> in the httpbind
// namespace with a valid rid. DTDs, processing instructions inside the body
// and text outside the payload elements are refused. Errors wrap errProtocol.
func parseRequest(data []byte) (*request, error) {
	body, err := wire.ParseBody(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProtocol, err)
	}
	req, err := requestAttrs(body.Attr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProtocol, err)
	}
	req.payload = body.Payload
	return req, nil
}

// requestAttrs reads the attributes of a request's <body/> start tag.
func requestAttrs(attrs []xml.Attr) (*request, error) {
	r := &request{hold: -1}
	hasRID := false
	for _, a := range attrs {
		var err error
		switch {
		case wire.IsRestart(a):
			r.restart = true
		case a.Name.Space == "http://www.w3.org/XML/1998/namespace" && a.Name.Local == "lang":
			r.lang = a.Value
		case a.Name.Space != "":
		default:
			switch a.Name.Local {
			case "rid":
				r.rid, err = strconv.ParseUint(strings.TrimSpace(a.Value), 10, 64)
				if err == nil && (r.rid == 0 || r.rid >= maxRID) {
					err = fmt.Errorf("rid %d out of range", r.rid)
				}
				hasRID = true
			case "sid":
				r.sid = a.Value
			case "to":
				r.to = a.Value
			case "type":
				r.typ = a.Value
			case "ver":
				r.ver = a.Value
			case "hold":
				var n uint64
				n, err = strconv.ParseUint(strings.TrimSpace(a.Value), 10, 8)
				r.hold, r.hasHold = int(n), true
			case "wait":
				r.wait, err = wire.ParseSeconds(a.Value)
				r.hasWait = true
			case "pause":
				r.hasPause = true
			}
		}
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name.Local, err)
		}
	}
	if !hasRID {
		return nil, errors.New("missing rid")
	}
	return r, nil
}

// responseBody builds a response <body/> with extra attributes (already
// formatted, each starting with a space) and the payload elements.
func responseBody(attrs string, payload [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("<body")
	b.WriteString(attrs)
	b.WriteString(" xmlns='" + wire.NSHTTPBind + "' xmlns:stream='" + wire.NSStream + "'")
	if len(payload) == 0 {
		b.WriteString("/>")
		return b.Bytes()
	}
	b.WriteByte('>')
	for _, p := range payload {
		b.Write(p)
	}
	b.WriteString("</body>")
	return b.Bytes()
}

// terminateBody builds a type='terminate' response.
func terminateBody(condition string, payload [][]byte) []byte {
	attrs := " type='terminate'"
	if condition != "" {
		attrs += " condition='" + wire.EscapeAttr(condition) + "'"
	}
	return responseBody(attrs, payload)
}

// attr formats one attribute for responseBody.
func attr(name, value string) string {
	return " " + name + "='" + wire.EscapeAttr(value) + "'"
}
