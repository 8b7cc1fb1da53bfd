package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"finesse-relay/server/sim/boshd"
	"finesse-relay/server/sim/idsd"
	"finesse-relay/server/sim/xmppd"
	"finesse-relay/xmpp/finesse"
)

// Sim is a running simulation: two Finesse nodes (A and B) sharing one CTI
// model, each with REST, XMPP (STARTTLS, direct TLS, WebSocket, BOSH), a
// simulated IdS and a control API. Create it with New, then call Run.
type Sim struct {
	cfg   Config
	log   *zap.Logger
	m     *model
	ids   *idsd.Server
	sides [2]*simSide
	tls   *tls.Config
	caPEM []byte

	idsLn, ctlLn net.Listener
	ep           Endpoints
}

// simSide is one Finesse node.
type simSide struct {
	name                          string
	domain                        string
	xmpp                          *xmppd.Server
	bosh                          *boshd.Server
	httpsLn, starttlsLn, directLn net.Listener
}

// Endpoints says where everything listens.
type Endpoints struct {
	// IdSURL is the IdS base URL (https://host:port; paths /ids/v1/...).
	IdSURL string
	// CACertPEM is the CA that signed every listener's certificate.
	CACertPEM []byte
	// Sides are side A (primary) and side B (secondary).
	Sides []SideEndpoints
	// ControlURL is the base of the control API (http://host:port, no
	// trailing slash).
	ControlURL string
}

// SideEndpoints are one Finesse node's addresses.
type SideEndpoints struct {
	Name         string // "A" or "B"
	Host         string // the host to connect to (Config.Host)
	HTTPSPort    int    // REST, WebSocket (/ws) and BOSH (/http-bind)
	XMPPPort     int    // XMPP with STARTTLS (Finesse's 5222)
	XMPPTLSPort  int    // XMPP with direct TLS (Finesse's 5223)
	WebSocketURL string // wss://host:port/ws
	BOSHURL      string // https://host:port/http-bind
	XMPPDomain   string // finesse-a.demo.local / finesse-b.demo.local
	PubSubDomain string // pubsub.<XMPPDomain>
}

// defaultClientID is registered with the IdS when Config.ClientID is empty.
const defaultClientID = "finesse-sim"

// New builds the model, generates the certificates and the IdS key, and
// binds every listener on Config.Host port 0. Nothing is served until Run.
func New(cfg Config) (*Sim, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tlsCfg, caPEM, err := newTLS(cfg.Host)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, log: cfg.Logger, tls: tlsCfg, caPEM: caPEM}
	s.m = newModel(cfg, cfg.timings())

	if s.ids, err = s.newIdS(); err != nil {
		return nil, err
	}
	s.m.verify = func(tok string) (string, error) {
		c, err := s.ids.Verify(tok)
		return c.UserID, err
	}

	var lns []net.Listener
	listen := func() (net.Listener, error) {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, "0"))
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("sim: listen on %s: %w", cfg.Host, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	for i := range s.sides {
		sd := &simSide{name: sideNames[i], domain: "finesse-" + []string{"a", "b"}[i] + ".demo.local"}
		if sd.httpsLn, err = listen(); err != nil {
			return nil, err
		}
		if sd.starttlsLn, err = listen(); err != nil {
			return nil, err
		}
		if sd.directLn, err = listen(); err != nil {
			return nil, err
		}
		s.sides[i] = sd
	}
	if s.idsLn, err = listen(); err != nil {
		return nil, err
	}
	if s.ctlLn, err = listen(); err != nil {
		return nil, err
	}

	for i, sd := range s.sides {
		i := i
		sd.xmpp = xmppd.New(xmppd.Config{
			Domain:    sd.domain,
			TLSConfig: tlsCfg,
			Authenticate: func(_ context.Context, username, password string) error {
				return s.m.authXMPP(username, password)
			},
			AuthorizeSubscribe: func(username, node string) error {
				if err := s.m.authorizeSubscribe(username, node); err != nil {
					return fmt.Errorf("%w: %w", xmppd.ErrForbidden, err)
				}
				return nil
			},
			OnPresence: func(username string, available bool) {
				s.m.mu.Lock()
				s.m.presence(i, username, available)
				s.m.mu.Unlock()
			},
			Logger: cfg.Logger.Named("xmpp-" + sd.name),
		})
		sd.bosh = boshd.New(boshd.Config{Domain: sd.domain, Logger: cfg.Logger.Named("bosh-" + sd.name)})
		info := sideInfo{
			host: cfg.Host, httpsPort: port(sd.httpsLn), xmppPort: port(sd.starttlsLn), xmppTLSPort: port(sd.directLn),
			xmppDomain: sd.domain, pubsubDomain: "pubsub." + sd.domain,
		}
		s.m.side[i] = info
		base := "https://" + net.JoinHostPort(cfg.Host, strconv.Itoa(info.httpsPort))
		s.ep.Sides = append(s.ep.Sides, SideEndpoints{
			Name: sd.name, Host: cfg.Host, HTTPSPort: info.httpsPort, XMPPPort: info.xmppPort, XMPPTLSPort: info.xmppTLSPort,
			WebSocketURL: "wss://" + net.JoinHostPort(cfg.Host, strconv.Itoa(info.httpsPort)) + "/ws",
			BOSHURL:      base + "/http-bind", XMPPDomain: sd.domain, PubSubDomain: info.pubsubDomain,
		})
	}
	s.ep.IdSURL = "https://" + s.idsLn.Addr().String()
	if s.cfg.PlainIdS {
		s.ep.IdSURL = "http://" + s.idsLn.Addr().String()
	}
	s.ep.ControlURL = "http://" + s.ctlLn.Addr().String()
	s.ep.CACertPEM = caPEM
	return s, nil
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

func (s *Sim) newIdS() (*idsd.Server, error) {
	users := make([]idsd.User, 0, len(s.m.agents))
	for _, u := range s.m.agents {
		users = append(users, idsd.User{ID: u.loginName, Name: u.first + " " + u.last, Password: u.password})
	}
	clients := map[string]idsd.Client{}
	if s.cfg.ClientID != "" {
		clients[s.cfg.ClientID] = idsd.Client{Secret: s.cfg.ClientSecret, RedirectURIs: s.cfg.RedirectURIs}
	} else {
		clients[defaultClientID] = idsd.Client{Secret: newID(), RedirectURIs: []string{"http://127.0.0.1:*/idscallback"}}
	}
	ids, err := idsd.New(idsd.Config{
		Issuer: "ids.demo.local", Clients: clients, Users: users,
		AccessTokenLifetime: s.cfg.AccessTokenLifetime, RefreshTokenLifetime: s.cfg.RefreshTokenLifetime,
		Logger: s.cfg.Logger.Named("ids"),
	})
	if err != nil {
		return nil, fmt.Errorf("sim: IdS: %w", err)
	}
	return ids, nil
}

// Endpoints returns the listeners' addresses. It may be called before Run.
func (s *Sim) Endpoints() Endpoints {
	ep := s.ep
	ep.Sides = append([]SideEndpoints(nil), s.ep.Sides...)
	ep.CACertPEM = append([]byte(nil), s.ep.CACertPEM...)
	return ep
}

// IdS returns the simulated IdS (Revoke, SetAvailable, SetLifetimes,
// IssueForTest).
func (s *Sim) IdS() *idsd.Server { return s.ids }

// Run serves everything until ctx is done, then stops every listener,
// connection, timer and goroutine it started before returning. It returns
// nil after ctx ends, or the first serving error. Call it once.
func (s *Sim) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	var notifiers [2]notifier
	for i, sd := range s.sides {
		notifiers[i] = sd.xmpp
	}
	g.Go(func() error { s.m.out.run(gctx, notifiers); return nil })

	for i, sd := range s.sides {
		mux := http.NewServeMux()
		mux.Handle(finesse.APIPrefix, &restHandler{m: s.m, side: i})
		ws := sd.xmpp.WebSocketHandler(gctx)
		mux.Handle("/ws", ws)
		mux.Handle("/ws/", ws)
		mux.Handle("/http-bind", sd.bosh)
		mux.Handle("/http-bind/", sd.bosh)
		serveHTTP(g, gctx, sd.httpsLn, mux, s.tls, s.log)
		g.Go(func() error { return ignoreClosed(sd.xmpp.Serve(gctx, sd.starttlsLn, xmppd.ModeSTARTTLS)) })
		g.Go(func() error { return ignoreClosed(sd.xmpp.Serve(gctx, sd.directLn, xmppd.ModeTLS)) })
		g.Go(func() error { return ignoreClosed(sd.xmpp.Serve(gctx, sd.bosh, xmppd.ModeSecure)) })
	}
	idsTLS := s.tls
	if s.cfg.PlainIdS {
		idsTLS = nil
	}
	serveHTTP(g, gctx, s.idsLn, s.ids.Handler(), idsTLS, s.log)
	serveHTTP(g, gctx, s.ctlLn, s.controlHandler(), nil, s.log)

	s.m.mu.Lock()
	s.m.startRobots()
	s.m.scheduleGenerator()
	s.m.startChat()
	s.m.statTimer = s.m.tmr.after(s.m.t.queueStats, s.m.tickQueueStats)
	s.m.mu.Unlock()

	<-gctx.Done()
	err := g.Wait()
	for _, sd := range s.sides {
		_ = sd.bosh.Close()
		_ = sd.xmpp.Close()
	}
	s.m.tmr.closeAll()
	return err
}

// serveHTTP runs an HTTP(S) server on ln in g and shuts it down when ctx
// ends.
func serveHTTP(g *errgroup.Group, ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, log *zap.Logger) {
	// Clients that refuse the simulator's private CA (probes, the check
	// command) make handshake errors: debug noise, not the terminal's.
	errLog, _ := zap.NewStdLogAt(log.Named("http"), zap.DebugLevel)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		return nil
	})
	g.Go(func() error { return ignoreClosed(srv.Serve(ln)) })
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, xmppd.ErrServerClosed) {
		return nil
	}
	return err
}

// sideIndex maps "A"/"B" (any case) to an index.
func sideIndex(name string) (int, error) {
	switch name {
	case "A", "a":
		return sideA, nil
	case "B", "b":
		return sideB, nil
	}
	return 0, fmt.Errorf("%w: %q (want A or B)", ErrUnknownSide, name)
}

// SetSideInService takes a side OUT_OF_SERVICE (REST answers 503 except
// SystemInfo, a SystemInfo notification goes out on that side, then its
// XMPP sessions are dropped) or back IN_SERVICE (SystemInfo notification,
// agents' state republished on that side, normal service). An unknown
// side is ignored (logged).
func (s *Sim) SetSideInService(side string, inService bool) {
	i, err := sideIndex(side)
	if err != nil {
		s.log.Warn("sim: SetSideInService", zap.Error(err))
		return
	}
	s.m.mu.Lock()
	changed := s.m.setInService(i, inService)
	s.m.mu.Unlock()
	if changed {
		s.log.Info("side status changed", zap.String("side", sideNames[i]), zap.Bool("inService", inService))
	}
}

// DropXMPP closes every XMPP connection of a side abruptly; REST stays up.
// An unknown side is ignored (logged).
func (s *Sim) DropXMPP(side string) {
	i, err := sideIndex(side)
	if err != nil {
		s.log.Warn("sim: DropXMPP", zap.Error(err))
		return
	}
	s.sides[i].xmpp.DropAll()
}

// PlaceCall places an inbound call from the number from into queueID. It
// rings the agent READY the longest, or waits in the queue. It returns the
// new dialog's id.
func (s *Sim) PlaceCall(queueID, from string) (dialogID string, err error) {
	if !validAddress(from) {
		return "", fmt.Errorf("%w: caller %q", ErrInvalidAddress, from)
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	q := s.m.queue(queueID)
	if q == nil {
		return "", fmt.Errorf("%w: %q", ErrUnknownQueue, queueID)
	}
	if s.m.waiting() >= maxWaiting {
		return "", fmt.Errorf("%w: %d calls waiting", ErrQueueFull, maxWaiting)
	}
	n := s.m.nextID + 1
	vars := []finesse.CallVariable{
		{Name: "callVariable1", Value: fmt.Sprintf("ACC-%06d", n%1_000_000)},
		{Name: "callVariable2", Value: "Placed through the simulator"},
		{Name: "user.CustomerTier", Value: "Gold"},
	}
	return s.m.placeCall(q, from, vars).id, nil
}

// UserState returns the agent state of loginID (LOGOUT, NOT_READY, READY,
// RESERVED, TALKING, HOLD, WORK, WORK_READY).
func (s *Sim) UserState(loginID string) (state string, ok bool) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	u := s.m.users[loginID]
	if u == nil {
		return "", false
	}
	return u.state, true
}
