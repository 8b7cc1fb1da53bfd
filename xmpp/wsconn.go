package xmpp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsProtocol is the WebSocket subprotocol of RFC 7395.
const wsProtocol = "xmpp"

var (
	streamEnd = []byte("</stream:stream>")
	wsClose   = []byte(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
)

// wsConn carries an XMPP stream over one WebSocket (RFC 7395) as a
// net.Conn byte stream: reads return the text of successive messages,
// writes are cut into one message per complete top-level element, as the
// RFC requires (an XML encoder may flush an element in several writes).
type wsConn struct {
	c  *websocket.Conn
	ls *linkState

	r io.Reader // the current message

	wmu  sync.Mutex
	wbuf []byte
	wsc  xmlScanner

	closeOnce sync.Once
}

var _ net.Conn = (*wsConn)(nil)

// dialWebSocket opens the WebSocket (with the "xmpp" subprotocol) within
// ctx. Every write on the underlying connection gets writeTimeout.
func dialWebSocket(ctx context.Context, cfg Config, ls *linkState) (*wsConn, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("xmpp: websocket url: %w", err)
	}
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: raw, timeout: cfg.WriteTimeout}, nil
		},
		TLSClientConfig:  cfg.TLSConfig,
		HandshakeTimeout: cfg.DialTimeout,
		Subprotocols:     []string{wsProtocol},
		// The XML decoder reading this connection has its own buffer and
		// what the relay writes upstream is small (IQs, presence, pings):
		// gorilla's default 4 KiB buffers would double-buffer every one of
		// thousands of sessions (about 11 KiB each, heap profile at 1,000).
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
	}
	origin := "https://" + u.Host
	c, resp, err := d.DialContext(ctx, u.String(), http.Header{"Origin": {origin}})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("xmpp: websocket %s: %w (HTTP %s)", u.Redacted(), err, resp.Status)
		}
		return nil, fmt.Errorf("xmpp: websocket %s: %w", u.Redacted(), err)
	}
	if c.Subprotocol() != wsProtocol {
		_ = c.Close()
		return nil, fmt.Errorf("xmpp: websocket %s: server did not accept the %q subprotocol", u.Redacted(), wsProtocol)
	}
	// One message holds one top-level element: bound it like a stanza.
	c.SetReadLimit(cfg.MaxStanzaSize)
	return &wsConn{
		c:   c,
		ls:  ls,
		wsc: xmlScanner{maxSize: cfg.MaxStanzaSize, maxDepth: cfg.MaxDepth},
	}, nil
}

// Read returns bytes of the current text message, moving on to the next
// message when it is exhausted.
func (w *wsConn) Read(p []byte) (int, error) {
	for {
		if w.r == nil {
			typ, r, err := w.c.NextReader()
			if err != nil {
				return 0, w.readErr(err)
			}
			if typ != websocket.TextMessage {
				return 0, fmt.Errorf("xmpp: websocket: binary message (RFC 7395 allows text only)")
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if err == io.EOF {
			w.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, w.readErr(err)
		}
		return n, nil
	}
}

func (w *wsConn) readErr(err error) error {
	if errors.Is(err, websocket.ErrReadLimit) {
		e := fmt.Errorf("%w: a websocket message exceeds %d bytes", ErrLimit, w.wsc.maxSize)
		w.ls.setLimit(e)
		return e
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return io.EOF
	}
	return err
}

// Write buffers p and sends every complete top-level element in it as one
// text message. Leading whitespace of a message is dropped.
func (w *wsConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	for i, b := range p {
		done, err := w.wsc.step(b)
		if err != nil {
			return i, fmt.Errorf("xmpp: websocket write: %w", err)
		}
		w.wbuf = append(w.wbuf, b)
		if !done {
			continue
		}
		msg := bytes.TrimLeft(w.wbuf, " \t\r\n")
		if bytes.Equal(msg, streamEnd) {
			// mellium v0.22.0 ends a WebSocket stream with the TCP form.
			msg = wsClose
		}
		if len(msg) > 0 {
			if err := w.c.WriteMessage(websocket.TextMessage, msg); err != nil {
				return i, err
			}
		}
		w.wbuf = w.wbuf[:0]
	}
	return len(p), nil
}

// Close sends a WebSocket close frame (best effort, 1 s) and closes the
// connection. It is idempotent.
func (w *wsConn) Close() error {
	var err error
	w.closeOnce.Do(func() {
		_ = w.c.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		err = w.c.Close()
	})
	return err
}

// LocalAddr returns the local network address.
func (w *wsConn) LocalAddr() net.Addr { return w.c.LocalAddr() }

// RemoteAddr returns the remote network address.
func (w *wsConn) RemoteAddr() net.Addr { return w.c.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the underlying
// connection. (gorilla's own SetWriteDeadline is not safe to call while a
// write is in progress, which mellium does.)
func (w *wsConn) SetDeadline(t time.Time) error { return w.c.NetConn().SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection.
func (w *wsConn) SetReadDeadline(t time.Time) error { return w.c.NetConn().SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection.
func (w *wsConn) SetWriteDeadline(t time.Time) error { return w.c.NetConn().SetWriteDeadline(t) }

// ConnectionState returns the TLS state of a wss connection.
func (w *wsConn) ConnectionState() tls.ConnectionState {
	if tc, ok := w.c.NetConn().(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}
