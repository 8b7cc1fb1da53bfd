package xmppd

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// limitConn counts the bytes read from a connection since the last reset
// and fails the read after the one that takes the count past max. The
// reader goroutine resets it after every complete stanza, so it bounds one
// stanza (and the whole handshake, which precedes the first reset).
// Whitespace before a stanza (keepalives) is not counted.
//
// The XML decoder reads ahead (4 KiB) and, on TLS, the record layer reads
// whole records (up to 16 KiB plus overhead), so the enforced limit is
// max plus at most about 21 KiB. On STARTTLS and direct TLS the count is of
// ciphertext bytes, which adds a few bytes per record.
//
// Once idle is set, every read first extends the read deadline by idle:
// any traffic, whitespace included, keeps the connection alive.
//
// Only the goroutine that reads the connection touches n, idle and err.
type limitConn struct {
	net.Conn
	n, max int64
	idle   time.Duration
	err    error // the first read error: why the input ended
	frozen atomic.Bool
}

func (c *limitConn) Read(p []byte) (n int, err error) {
	defer func() {
		if err != nil && c.err == nil {
			c.err = err
		}
	}()
	if c.n > c.max {
		return 0, fmt.Errorf("%w (%d bytes)", errStanzaTooLarge, c.max)
	}
	if c.idle > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	n, err = c.Conn.Read(p)
	b := p[:n]
	if c.n == 0 {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
			b = b[1:]
		}
	}
	c.n += int64(len(b))
	return n, err
}

// reset starts a new stanza.
func (c *limitConn) reset() { c.n = 0 }

// SetDeadline is what mellium's handshake uses to honour its context. After
// freeze it does nothing, so a late cancellation cannot break the session;
// SetReadDeadline and SetWriteDeadline keep working.
func (c *limitConn) SetDeadline(t time.Time) error {
	if c.frozen.Load() {
		return nil
	}
	return c.Conn.SetDeadline(t)
}

// freeze ends the handshake's control of the deadlines.
func (c *limitConn) freeze() { c.frozen.Store(true) }
