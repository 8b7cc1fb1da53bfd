package xmppd

// The server writes every stanza as bytes it builds itself: publications
// are encoded once and shared by all recipients, and each connection has a
// single writer, so no xml.Encoder is needed after the handshake.

// Namespaces used on the wire.
const (
	nsClient      = "jabber:client"
	nsStream      = "http://etherx.jabber.org/streams"
	nsStreams     = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsFraming     = "urn:ietf:params:xml:ns:xmpp-framing"
	nsSession     = "urn:ietf:params:xml:ns:xmpp-session"
	nsPing        = "urn:xmpp:ping"
	nsDiscoInfo   = "http://jabber.org/protocol/disco#info"
	nsPubSub      = "http://jabber.org/protocol/pubsub"
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event"
	nsPubSubErr   = "http://jabber.org/protocol/pubsub#errors"
)

// appendAttr appends s escaped for use inside a single-quoted attribute.
func appendAttr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '\t':
			b = append(b, "&#x9;"...)
		case '\n':
			b = append(b, "&#xA;"...)
		case '\r':
			b = append(b, "&#xD;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendText appends s escaped as character data the way Finesse escapes
// the <Update> document: '&', '<' and '>' become entity references (and
// '\r' a character reference, so it survives line-end normalisation);
// everything else is copied.
func appendText(b []byte, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\r':
			b = append(b, "&#xD;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// stanzaErr is a stanza error condition (RFC 6120 8.3.3) with its type
// and an optional XEP-0060 application condition.
type stanzaErr struct {
	typ, cond, app string
}

// The stanza errors the server sends.
var (
	errBadRequest         = stanzaErr{typ: "modify", cond: "bad-request"}
	errForbidden          = stanzaErr{typ: "auth", cond: "forbidden"}
	errItemNotFound       = stanzaErr{typ: "cancel", cond: "item-not-found"}
	errServiceUnavailable = stanzaErr{typ: "cancel", cond: "service-unavailable"}
	errNotSubscribed      = stanzaErr{typ: "cancel", cond: "unexpected-request", app: "not-subscribed"}
	errPolicyViolation    = stanzaErr{typ: "wait", cond: "policy-violation"}
	errJIDRequired        = stanzaErr{typ: "modify", cond: "bad-request", app: "jid-required"}
	errNodeRequired       = stanzaErr{typ: "modify", cond: "bad-request", app: "nodeid-required"}
	errInvalidJID         = stanzaErr{typ: "modify", cond: "bad-request", app: "invalid-jid"}
)

// appendStanzaErr appends <error type=...><cond/>[<app/>]</error>.
func appendStanzaErr(b []byte, e stanzaErr) []byte {
	b = append(b, "<error type='"...)
	b = append(b, e.typ...)
	b = append(b, "'><"...)
	b = append(b, e.cond...)
	b = append(b, " xmlns='"+nsStanzas+"'/>"...)
	if e.app != "" {
		b = append(b, '<')
		b = append(b, e.app...)
		b = append(b, " xmlns='"+nsPubSubErr+"'/>"...)
	}
	return append(b, "</error>"...)
}

// streamError is a stream error condition (RFC 6120 4.9.3) with optional
// text.
type streamError struct {
	cond, text string
}

// The stream errors the server sends.
var (
	streamConflict         = streamError{cond: "conflict", text: "Replaced by new connection"}
	streamSystemShutdown   = streamError{cond: "system-shutdown"}
	streamTimeout          = streamError{cond: "connection-timeout"}
	streamPolicyViolation  = streamError{cond: "policy-violation", text: "stanza too large or too deep"}
	streamResourceLimit    = streamError{cond: "resource-constraint", text: "outbound queue full"}
	streamNotWellFormed    = streamError{cond: "not-well-formed"}
	streamBadFormat        = streamError{cond: "bad-format"}
	streamUnsupportedStnza = streamError{cond: "unsupported-stanza-type"}
	streamHostUnknown      = streamError{cond: "host-unknown"}
	streamNotAuthorized    = streamError{cond: "not-authorized", text: "resource binding failed"}
)

// appendStreamError appends the stream error element. On WebSocket there is
// no enclosing <stream:stream>, so the prefix is declared on the element
// itself (RFC 7395 3.6).
func appendStreamError(b []byte, e streamError, ws bool) []byte {
	if ws {
		b = append(b, "<stream:error xmlns:stream='"+nsStream+"'>"...)
	} else {
		b = append(b, "<stream:error>"...)
	}
	b = append(b, '<')
	b = append(b, e.cond...)
	b = append(b, " xmlns='"+nsStreams+"'/>"...)
	if e.text != "" {
		b = append(b, "<text xmlns='"+nsStreams+"'>"...)
		b = appendText(b, []byte(e.text))
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}

// closeTag returns the end of the server's stream.
func closeTag(ws bool) []byte {
	if ws {
		return []byte("<close xmlns='" + nsFraming + "'/>")
	}
	return []byte("</stream:stream>")
}

// Error makes a stream error usable as the error that ends a stream.
func (e streamError) Error() string { return "xmppd: stream error " + e.cond }
