package xmppd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// wsProtocol is the RFC 7395 WebSocket subprotocol.
const wsProtocol = "xmpp"

// WebSocketHandler returns the RFC 7395 endpoint (XMPP over WebSocket with
// <open/> and <close/> framing). The caller mounts it, at /ws and /ws/ like
// Finesse; the handler does not look at the path. Each connection runs on
// the handler's goroutine until it ends, the server is closed, or ctx is
// done (then it gets a system-shutdown stream error).
//
// Requests that are not WebSocket upgrades, or do not offer the "xmpp"
// subprotocol, get 400 (Openfire refuses them too); 503 once the server is
// closed, ctx is done, the Config is invalid or MaxConnections is reached.
// The stream counts as secure (the HTTP server owns TLS, as with Prosody's
// consider_websocket_secure), so SASL is offered at once. Each client
// message must be one complete element (RFC 7395 3.3.3) of at most
// MaxStanzaSize bytes; each server message is one element.
func (s *Server) WebSocketHandler(ctx context.Context) http.Handler {
	up := websocket.Upgrader{
		Subprotocols:     []string{wsProtocol},
		HandshakeTimeout: s.cfg.HandshakeTimeout,
		CheckOrigin:      s.cfg.CheckOrigin,
	}
	if up.CheckOrigin == nil {
		up.CheckOrigin = func(*http.Request) bool { return true }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "xmppd: WebSocket upgrade required", http.StatusBadRequest)
			return
		}
		if !slices.Contains(websocket.Subprotocols(r), wsProtocol) {
			http.Error(w, "xmppd: the xmpp WebSocket subprotocol is required", http.StatusBadRequest)
			return
		}
		if s.cfgErr != nil || ctx.Err() != nil || !s.admit() {
			if s.cfgErr != nil {
				s.log.Error("websocket refused", zap.Error(s.cfgErr))
			}
			http.Error(w, "xmppd: service unavailable", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			s.release()
			return // Upgrade has answered the request
		}
		ws.SetReadLimit(s.cfg.MaxStanzaSize)
		c := s.newConn(&wsConn{ws: ws}, modeWebSocket)
		if !s.track(c) {
			_ = ws.NetConn().Close()
			return
		}
		defer s.wg.Done()
		stop := context.AfterFunc(ctx, func() { c.stop(&streamSystemShutdown, false) })
		defer stop()
		c.run(ctx)
	})
}

// wsConn adapts a WebSocket connection to the byte stream mellium reads
// and writes: Read returns the text of consecutive messages, Write sends
// one message. Only one goroutine reads and one writes at a time (the
// connection's reader and writer); Close may be called concurrently.
type wsConn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read, nil between messages
}

var _ net.Conn = (*wsConn)(nil)

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.TextMessage {
				return 0, fmt.Errorf("xmppd: websocket: binary message (RFC 7395 allows text only)")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a normal-closure close frame (best effort, bounded) and
// closes the connection.
func (c *wsConn) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}

// netConn returns the transport under the WebSocket, for abrupt closes.
func (c *wsConn) netConn() net.Conn { return c.ws.NetConn() }
