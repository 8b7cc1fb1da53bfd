package gadget

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Limits on the fields of inbound commands.
const (
	maxIDLen     = 128 // command id, echoed in replies and errors
	maxNodeLen   = 512 // a Finesse node path
	maxStreamLen = 64  // a stream id (welcome.stream)
)

// Inbound command types.
const (
	cmdPing        = "ping"
	cmdSubscribe   = "subscribe"
	cmdUnsubscribe = "unsubscribe"
	cmdResume      = "resume"
)

// command is one decoded browser → relay message.
type command struct {
	Type   string `json:"type"`
	ID     string `json:"id,omitempty"`
	Node   string `json:"node,omitempty"`
	Since  *int64 `json:"since,omitempty"`
	Stream string `json:"stream,omitempty"`
}

// protoError is a refused command, sent to the browser as an error message.
type protoError struct {
	Code    string // one of the Code… constants
	Message string // safe for the browser
	ID      string // the command's id, when it had a usable one
}

func (e *protoError) Error() string { return "gadget: " + e.Code + ": " + e.Message }

// wireCommand is the first decoding pass: every field kept raw so that a
// mistyped field can be reported while the id is still echoed.
type wireCommand struct {
	Type   json.RawMessage `json:"type"`
	ID     json.RawMessage `json:"id"`
	Node   json.RawMessage `json:"node"`
	Since  json.RawMessage `json:"since"`
	Stream json.RawMessage `json:"stream"`
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// optString decodes an optional string field of at most max bytes.
func optString(raw json.RawMessage, field string, max int) (string, *protoError) {
	if !present(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &protoError{Code: CodeBadRequest, Message: field + " must be a string"}
	}
	if len(s) > max {
		return "", &protoError{Code: CodeBadRequest, Message: field + " is longer than " + strconv.Itoa(max) + " bytes"}
	}
	return s, nil
}

// decodeCommand parses one inbound text frame. It never panics; every
// refusal is a *protoError carrying the command id when one could be read.
func decodeCommand(b []byte) (command, *protoError) {
	var w wireCommand
	if err := json.Unmarshal(b, &w); err != nil {
		return command{}, &protoError{Code: CodeBadRequest, Message: "message is not a JSON object"}
	}
	var c command
	var perr *protoError
	if c.ID, perr = optString(w.ID, "id", maxIDLen); perr != nil {
		return command{}, perr
	}
	fail := func(code, msg string) (command, *protoError) {
		return command{}, &protoError{Code: code, Message: msg, ID: c.ID}
	}
	if !present(w.Type) {
		return fail(CodeBadRequest, "type is missing")
	}
	if c.Type, perr = optString(w.Type, "type", 32); perr != nil {
		return fail(perr.Code, perr.Message)
	}
	switch c.Type {
	case cmdPing:
	case cmdSubscribe, cmdUnsubscribe:
		if c.Node, perr = optString(w.Node, "node", maxNodeLen); perr != nil {
			return fail(perr.Code, perr.Message)
		}
		if c.Node == "" {
			return fail(CodeBadRequest, "node is missing")
		}
	case cmdResume:
		if !present(w.Since) {
			return fail(CodeBadRequest, "since is missing")
		}
		var since int64
		if err := json.Unmarshal(w.Since, &since); err != nil || since < -1 {
			return fail(CodeBadRequest, "since must be an integer >= -1")
		}
		c.Since = &since
		if c.Stream, perr = optString(w.Stream, "stream", maxStreamLen); perr != nil {
			return fail(perr.Code, perr.Message)
		}
	default:
		return fail(CodeUnknownType, "unknown message type")
	}
	return c, nil
}

// ---- outbound encoding ----
//
// Frames are built by appending to byte slices: every message is encoded
// once and the same bytes are written to every connection that may see it.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with the escaping of
// encoding/json (HTML-safe, invalid UTF-8 replaced by U+FFFD, U+2028 and
// U+2029 escaped).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendSeconds appends a duration in seconds as a JSON number ("25", "0.1").
func appendSeconds(b []byte, secs float64) []byte {
	return strconv.AppendFloat(b, secs, 'f', -1, 64)
}

// appendEventTail appends the part of an event frame that follows the seq:
// `,"node":…,"event":…,"source":…,"requestId":…,"data":` (data follows).
func appendEventTail(b []byte, node, event, source, requestID string) []byte {
	return append(appendEventFields(b, node, event, source, requestID), `,"data":`...)
}

// appendReconciledTail is appendEventTail for an event derived from a
// snapshot: event PUT, source = node, and `,"reconciled":true` before data.
func appendReconciledTail(b []byte, node, requestID string) []byte {
	return append(appendEventFields(b, node, "PUT", node, requestID), `,"reconciled":true,"data":`...)
}

// appendEventFields appends `,"node":…,"event":…,"source":…,"requestId":…`.
func appendEventFields(b []byte, node, event, source, requestID string) []byte {
	b = append(b, `,"node":`...)
	b = appendString(b, node)
	b = append(b, `,"event":`...)
	b = appendString(b, event)
	b = append(b, `,"source":`...)
	b = appendString(b, source)
	b = append(b, `,"requestId":`...)
	return appendString(b, requestID)
}

const (
	eventHead  = `{"type":"event","seq":`
	stateHead  = `{"type":"state","seq":`
	statusHead = `{"type":"status","seq":`
)

// stateFrame returns {"type":"state","seq":N,"node":…,"data":data}.
func stateFrame(seq int64, node string, data []byte) []byte {
	b := make([]byte, 0, len(stateHead)+20+len(`,"node":,"data":}`)+len(node)+2+len(data))
	b = append(b, stateHead...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"node":`...)
	b = appendString(b, node)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// statusFrame returns {"type":"status","seq":N,"upstream":…,"side":…,"host":…}.
func statusFrame(seq int64, st Status) []byte {
	b := make([]byte, 0, 64+len(st.Upstream)+len(st.Side)+len(st.Host))
	b = append(b, statusHead...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ',')
	return appendStatusFields(b, st)
}

// appendStatusFields appends `"upstream":…,"side":…,"host":…}`: the end of
// a status frame, and of a Status in the stored forms.
func appendStatusFields(b []byte, st Status) []byte {
	b = append(b, `"upstream":`...)
	b = appendString(b, st.Upstream)
	b = append(b, `,"side":`...)
	b = appendString(b, st.Side)
	b = append(b, `,"host":`...)
	b = appendString(b, st.Host)
	return append(b, '}')
}

// welcomeFrame returns the welcome message.
func welcomeFrame(agent string, roles []string, seq int64, resumed bool, heartbeat float64, stream string) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"type":"welcome","agent":`...)
	b = appendString(b, agent)
	b = append(b, `,"roles":[`...)
	for i, r := range roles {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r)
	}
	b = append(b, `],"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"resumed":`...)
	b = strconv.AppendBool(b, resumed)
	b = append(b, `,"heartbeat":`...)
	b = appendSeconds(b, heartbeat)
	b = append(b, `,"stream":`...)
	b = appendString(b, stream)
	return append(b, '}')
}

// replyFrame returns {"type":"reply","id":…} (ok added for commands that
// change something).
func replyFrame(id string, ok bool) []byte {
	b := make([]byte, 0, 48+len(id))
	b = append(b, `{"type":"reply"`...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, id)
	}
	if ok {
		b = append(b, `,"ok":true`...)
	}
	return append(b, '}')
}

// errorFrame returns {"type":"error","code":…,"message":…,"id":…}.
func errorFrame(e *protoError) []byte {
	b := make([]byte, 0, 64+len(e.Message)+len(e.ID))
	b = append(b, `{"type":"error","code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if e.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, e.ID)
	}
	return append(b, '}')
}

// encoder marshals data values into a reusable buffer.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newEncoder() *encoder {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}

// maxPooledBuffer: encoders that grew beyond this are not reused.
const maxPooledBuffer = 64 << 10

// appendData appends v's JSON to the buffer; on a marshal error it appends
// null and returns the error.
func (e *encoder) appendData(v any) error {
	n := e.buf.Len()
	if err := e.enc.Encode(v); err != nil {
		e.buf.Truncate(n)
		e.buf.WriteString("null")
		return err
	}
	e.buf.Truncate(e.buf.Len() - 1) // Encode's trailing newline
	return nil
}
