package xmpp

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The XML structure scanner below follows a byte stream just enough to
// know where each top-level element (stanza, stream feature list, stream
// error, ...) begins and ends and how deep elements nest. It never
// buffers, so it can bound what encoding/xml would otherwise buffer
// without limit (a huge text node, a huge attribute, an endless tag).
//
// A "top-level item" is an element that is a child of <stream:stream> (TCP,
// TLS, BOSH byte streams) or an element at depth 0 (RFC 7395 WebSocket
// framing, where <open/> and <close/> are self-closing), or a run of text
// between such elements. Its size counts every byte from its first byte to
// its last. A start tag whose local name is "stream" at depth 0 or 1 opens
// a new stream (streams restart after STARTTLS and SASL without the old one
// being closed).

type scanState uint8

const (
	sText    scanState = iota
	sLT                // after '<'
	sName              // in a tag name (start or end tag)
	sAttrs             // in a start tag after its name
	sQuote             // in an attribute value
	sSlash             // after '/' in a start tag
	sEndRest           // in an end tag after its name
	sBang              // after "<!"
	sComment           // in <!-- ... -->
	sCDATA             // in <![CDATA[ ... ]]>
	sPI                // in <? ... ?>
	sDecl              // in another <! ... > declaration
)

const maxScanName = 64

// qname is a bounded copy of an element's qualified name.
type qname struct {
	b [maxScanName]byte
	n int // full length, may exceed len(b)
}

func (q *qname) reset() { q.n = 0 }

func (q *qname) add(c byte) {
	if q.n < maxScanName {
		q.b[q.n] = c
	}
	q.n++
}

// local returns the part after the last ':' ("" when the name was too
// long to keep).
func (q *qname) local() string {
	if q.n > maxScanName {
		return ""
	}
	s := q.b[:q.n]
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return string(s[i+1:])
		}
	}
	return string(s)
}

func (q *qname) prefix() string {
	if q.n > maxScanName {
		return ""
	}
	s := q.b[:q.n]
	for i := range s {
		if s[i] == ':' {
			return string(s[:i])
		}
	}
	return ""
}

type xmlScanner struct {
	maxSize  int64 // bytes per top-level item
	maxDepth int   // element nesting inside the stream element

	st       scanState
	depth    int  // open elements, the stream element counting as one
	inStream bool // a stream header is open
	n        int64
	quote    byte
	tail     [2]byte // last two bytes inside comments, CDATA, PIs
	closing  bool    // the current tag is an end tag
	name     qname   // the current tag's name
	top      qname   // the open top-level element's name
	child    qname   // its first child's name
	hasChild bool

	// streamErr is the condition of the last <stream:error> seen (its
	// first child's local name); the reader clears it after reporting.
	streamErr string
}

func (s *xmlScanner) base() int {
	if s.inStream {
		return 1
	}
	return 0
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// step consumes one byte. done reports that the byte completed a top-level
// item (an element, a stream header, a stream end tag).
func (s *xmlScanner) step(c byte) (done bool, err error) {
	s.n++
	if s.n > s.maxSize {
		return false, fmt.Errorf("%w: a stanza exceeds %d bytes", ErrLimit, s.maxSize)
	}
	switch s.st {
	case sText:
		if c == '<' {
			if s.depth == s.base() {
				s.n = 1 // a new top-level item starts here
			}
			s.st = sLT
		}
	case sLT:
		switch c {
		case '/':
			s.closing = true
			s.name.reset()
			s.st = sName
		case '?':
			s.tail = [2]byte{}
			s.st = sPI
		case '!':
			s.st = sBang
		default:
			s.closing = false
			s.name.reset()
			s.name.add(c)
			s.st = sName
		}
	case sName:
		switch {
		case c == '>':
			return s.tagEnd(false)
		case c == '/' && !s.closing:
			s.st = sSlash
		case isXMLSpace(c):
			if s.closing {
				s.st = sEndRest
			} else {
				s.st = sAttrs
			}
		default:
			s.name.add(c)
		}
	case sAttrs:
		switch c {
		case '"', '\'':
			s.quote = c
			s.st = sQuote
		case '/':
			s.st = sSlash
		case '>':
			return s.tagEnd(false)
		}
	case sQuote:
		if c == s.quote {
			s.st = sAttrs
		}
	case sSlash:
		if c == '>' {
			return s.tagEnd(true)
		}
		s.st = sAttrs // malformed; the XML decoder will say so
	case sEndRest:
		if c == '>' {
			return s.tagEnd(false)
		}
	case sBang:
		s.tail = [2]byte{}
		switch c {
		case '-':
			s.st = sComment
		case '[':
			s.st = sCDATA
		default:
			s.st = sDecl
		}
	case sComment:
		if c == '>' && s.tail == [2]byte{'-', '-'} {
			return s.markupEnd(), nil
		}
		s.tail = [2]byte{s.tail[1], c}
	case sCDATA:
		if c == '>' && s.tail == [2]byte{']', ']'} {
			s.st = sText // CDATA is text inside an element
			return false, nil
		}
		s.tail = [2]byte{s.tail[1], c}
	case sPI:
		if c == '>' && s.tail[1] == '?' {
			return s.markupEnd(), nil
		}
		s.tail = [2]byte{s.tail[1], c}
	case sDecl:
		if c == '>' {
			return s.markupEnd(), nil
		}
	}
	return false, nil
}

// markupEnd ends a comment, PI or declaration.
func (s *xmlScanner) markupEnd() bool {
	s.st = sText
	if s.depth == s.base() {
		s.n = 0
		return true
	}
	return false
}

// tagEnd handles the '>' that ends a start, end or self-closing tag.
func (s *xmlScanner) tagEnd(selfClosing bool) (bool, error) {
	s.st = sText
	base := s.base()
	switch {
	case s.closing:
		if s.inStream && s.depth == 1 && s.name.local() == "stream" {
			s.inStream, s.depth, s.n = false, 0, 0
			return true, nil
		}
		if s.depth > base {
			s.depth--
		}
		if s.depth == base {
			if s.top.local() == "error" && s.top.prefix() == "stream" && s.hasChild {
				s.streamErr = s.child.local()
			}
			s.n = 0
			return true, nil
		}
	case !selfClosing && s.depth <= 1 && s.name.local() == "stream":
		// A stream header (first one or a restart).
		s.inStream, s.depth, s.n = true, 1, 0
		return true, nil
	default:
		if s.depth == base {
			s.top = s.name
			s.hasChild = false
		} else if s.depth == base+1 && !s.hasChild {
			s.child, s.hasChild = s.name, true
		}
		if selfClosing {
			if s.depth == base {
				s.n = 0
				return true, nil
			}
			return false, nil
		}
		s.depth++
		if s.depth-base > s.maxDepth {
			return false, fmt.Errorf("%w: elements nested deeper than %d", ErrLimit, s.maxDepth)
		}
	}
	return false, nil
}

// linkState is what the connection wrappers of one Client report: a
// tripped limit and the last stream error condition seen on the wire.
type linkState struct {
	mu        sync.Mutex
	limitErr  error
	streamErr string
}

func (l *linkState) setLimit(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limitErr == nil {
		l.limitErr = err
	}
}

func (l *linkState) setStreamErr(cond string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streamErr = cond
}

func (l *linkState) get() (streamErr string, limitErr error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streamErr, l.limitErr
}

// limitConn enforces the stanza size and depth limits on the XML read
// from its Conn, which must carry plain XML (above TLS). Reads are made
// by one goroutine at a time (the session's XML decoder).
type limitConn struct {
	net.Conn
	sc   xmlScanner
	err  error
	pass atomic.Bool // the connection now carries TLS: stop scanning
	ls   *linkState
}

func newLimitConn(c net.Conn, maxSize int64, maxDepth int, ls *linkState) *limitConn {
	return &limitConn{Conn: c, sc: xmlScanner{maxSize: maxSize, maxDepth: maxDepth}, ls: ls}
}

// Read reads from the wrapped connection and fails, for good, as soon as
// the input breaks a limit.
func (c *limitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if c.pass.Load() {
		return n, err
	}
	for i := range n {
		if _, e := c.sc.step(p[i]); e != nil {
			c.err = e
			c.ls.setLimit(e)
			return 0, e
		}
	}
	if c.sc.streamErr != "" {
		c.ls.setStreamErr(c.sc.streamErr)
		c.sc.streamErr = ""
	}
	return n, err
}

// ConnectionState returns the TLS state of the wrapped connection, if any,
// so that mellium sees the link as TLS.
func (c *limitConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// deadlineConn gives every Write a deadline, so that a peer that stops
// reading cannot block a writer (and the session's output lock) for ever.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

// Write writes p with a deadline of now plus the write timeout.
func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
