// Package faultnet is a loopback TCP proxy for tests that can misbehave on
// command. A Proxy listens on 127.0.0.1:0 and forwards every accepted
// connection to a target address, byte for byte (TLS passes through
// untouched). While it runs, a test can:
//
//   - delay each direction (SetLatency): every chunk read is written
//     after the delay, order kept;
//   - cut every open connection, with a FIN (Cut) or an RST (Reset);
//   - black-hole (Blackhole): stop forwarding in both directions without
//     closing anything, and hold new connections unanswered, so only an
//     application-level timeout can notice;
//   - refuse new connections (Refuse): each is accepted and reset at once,
//     the way a port with nothing behind it answers;
//   - resume normal service (Resume): held bytes and held connections go
//     through, new connections are forwarded again.
//
// The Proxy owns every goroutine it starts; Close stops them all and
// returns once they have ended. It uses only the standard library.
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is what the Proxy does with traffic.
type Mode int

const (
	// Forward passes traffic through (with the configured latency).
	Forward Mode = iota
	// Blackhole holds traffic: nothing is forwarded, nothing is closed.
	Blackhole
	// Refuse resets every new connection; open ones keep forwarding.
	Refuse
)

func (m Mode) String() string {
	switch m {
	case Forward:
		return "forward"
	case Blackhole:
		return "blackhole"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Direction names one way through the Proxy.
type Direction int

const (
	// Upstream is client → target.
	Upstream Direction = iota
	// Downstream is target → client.
	Downstream
)

// chunkSize is the read buffer of each direction of a connection.
const chunkSize = 32 << 10

// dialTimeout bounds the connection to the target.
const dialTimeout = 5 * time.Second

// Proxy forwards connections from its loopback listener to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	mode     Mode
	latency  [2]time.Duration
	conns    map[*link]struct{}
	accepted int
	resumed  chan struct{} // closed (and replaced) when the mode leaves Blackhole
	closed   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start listens on 127.0.0.1:0 and forwards every connection to target
// (host:port) until Close.
func Start(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultnet: target %q is not host:port: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen on 127.0.0.1:0: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{ln: ln, target: target, conns: make(map[*link]struct{}), resumed: make(chan struct{}), ctx: ctx, cancel: cancel}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the Proxy's listen address (127.0.0.1:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the Proxy's listen port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Target is where connections are forwarded.
func (p *Proxy) Target() string { return p.target }

// SetLatency delays every chunk going in direction d by lat (0 = none).
// It applies to chunks read from then on, on open and new connections.
func (p *Proxy) SetLatency(d Direction, lat time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency[d] = max(lat, 0)
}

// Blackhole stops forwarding: open connections stay open but carry
// nothing, new connections are accepted and held. Resume releases both.
func (p *Proxy) Blackhole() { p.setMode(Blackhole) }

// Refuse resets every new connection as soon as it is accepted. Open
// connections are not touched (Cut or Reset them too for a restart).
func (p *Proxy) Refuse() { p.setMode(Refuse) }

// Resume returns to forwarding: bytes and connections held by Blackhole
// go through, new connections are forwarded.
func (p *Proxy) Resume() { p.setMode(Forward) }

// Mode is the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *Proxy) setMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == Blackhole && m != Blackhole {
		close(p.resumed)
		p.resumed = make(chan struct{})
	}
	p.mode = m
}

// Cut closes every open connection on both sides with a FIN and returns
// how many it closed. New connections are still accepted (see Refuse).
func (p *Proxy) Cut() int { return p.closeAll(false) }

// Reset closes every open connection on both sides with an RST (linger 0)
// and returns how many it closed.
func (p *Proxy) Reset() int { return p.closeAll(true) }

func (p *Proxy) closeAll(rst bool) int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(rst)
	}
	return len(links)
}

// Open is the number of connections open through the Proxy now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted is the number of connections accepted since Start (refused
// ones included).
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops listening, resets every open connection and waits for
// every goroutine of the Proxy to end. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if already {
		return nil
	}
	p.cancel()
	err := p.ln.Close()
	p.Reset()
	p.wg.Wait()
	return err
}

// gate waits while the Proxy black-holes traffic. It reports false when
// the Proxy or the link closes meanwhile.
func (p *Proxy) gate(done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		m, resumed := p.mode, p.resumed
		p.mu.Unlock()
		if m != Blackhole {
			return true
		}
		select {
		case <-resumed:
		case <-done:
			return false
		case <-p.ctx.Done():
			return false
		}
	}
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off briefly.
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-p.ctx.Done():
				return
			}
		}
		p.mu.Lock()
		p.accepted++
		mode, closed := p.mode, p.closed
		p.mu.Unlock()
		if closed || mode == Refuse {
			resetConn(c)
			continue
		}
		l := &link{client: c, done: make(chan struct{})}
		if !p.track(l) {
			resetConn(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(l)
	}
}

func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[l] = struct{}{}
	return true
}

func (p *Proxy) untrack(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, l)
}

// serve connects l to the target and pumps both directions until either
// side closes or the link is cut.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer p.untrack(l)
	// A black-holed Proxy holds a new connection before dialing: the
	// client's first bytes wait in the kernel until Resume.
	if !p.gate(l.done) {
		l.close(true)
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	t, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		l.close(true)
		return
	}
	if !l.setTarget(t) {
		_ = t.Close()
		return
	}
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(l, Upstream, l.client, t) }()
	go func() { defer pumps.Done(); p.pump(l, Downstream, t, l.client) }()
	pumps.Wait()
	l.close(false)
}

// chunk is bytes read at a time, to be written after the latency.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst for direction dir: a reader goroutine stamps each
// chunk with its due time, this goroutine writes it when due and when the
// Proxy is not black-holing. EOF on src half-closes dst.
func (p *Proxy) pump(l *link, dir Direction, src, dst net.Conn) {
	chunks := make(chan chunk, 64)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(chunks)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				lat := p.latency[dir]
				p.mu.Unlock()
				select {
				case chunks <- chunk{data: buf[:n], due: time.Now().Add(lat)}:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { <-readerDone }()
	for c := range chunks {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		if !p.gate(l.done) {
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			l.close(true)
			return
		}
	}
	// src said EOF (or failed): pass the FIN on, keep the other way open.
	if tc, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
}

// link is one proxied connection: the client's and the target's sockets.
type link struct {
	client net.Conn
	done   chan struct{}

	mu     sync.Mutex
	target net.Conn
	closed bool
}

// setTarget records the target socket; false when the link was closed
// while dialing.
func (l *link) setTarget(t net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.target = t
	return true
}

// close closes both sockets once, with an RST when rst is set.
func (l *link) close(rst bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	t := l.target
	close(l.done)
	l.mu.Unlock()
	for _, c := range []net.Conn{l.client, t} {
		if c == nil {
			continue
		}
		if rst {
			resetConn(c)
		} else {
			_ = c.Close()
		}
	}
}

// resetConn closes c with an RST instead of a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
