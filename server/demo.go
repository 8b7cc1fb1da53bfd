package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"finesse-relay/server/sim"
)

// demoClientID is the relay's IdS client registration in the simulator.
const demoClientID = "finesse-relay-demo"

// cmdDemo runs the relay against the embedded Finesse/IdS simulator, all on
// loopback, and prints what to open.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listenAddr := fs.String("listen", "127.0.0.1:1125", "relay listen address host:port")
	agents := fs.Int("agents", 20, "number of simulated agents (1001 upward)")
	seed := fs.Int64("seed", 1, "scenario seed (same seed, same calls)")
	fast := fs.Bool("fast", false, "short ring/talk/wrap-up times (tests)")
	robots := fs.Bool("robots", true, "simulated agents 1002+ work calls on their own")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	rona := fs.Duration("rona", 15*time.Second, "ring-no-answer time: an unanswered routed call goes back to the queue and the agent becomes Not Ready (0 = never)")
	origins := fs.String("allow-origin", "", "extra allowedOrigins, comma separated (e.g. a Finesse desktop that loads the gadget)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	ronaTimeout := *rona
	if ronaTimeout <= 0 {
		ronaTimeout = -1 // sim: negative disables
	}
	if *agents < 1 || *agents > 10000 {
		fmt.Fprintln(stderr, "finesse-relay: demo: --agents must be between 1 and 10000")
		return exitConfig
	}
	host, port, err := net.SplitHostPort(*listenAddr)
	if err != nil {
		fmt.Fprintf(stderr, "finesse-relay: demo: --listen %q is not host:port\n", *listenAddr)
		return exitConfig
	}
	log, err := newLogger(*logLevel, "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: demo:", err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()
	p, _ := strconv.Atoi(port)
	ln, err := listen("--listen", host, p)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	_, actualPort, _ := net.SplitHostPort(ln.Addr().String())
	shown := host
	if shown == "" || shown == "0.0.0.0" || shown == "::" {
		shown = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(shown, actualPort)

	secret := randomToken()
	s, err := sim.New(sim.Config{
		Agents: *agents, Seed: *seed, Fast: *fast, Robots: *robots, PlainIdS: true, RONATimeout: ronaTimeout,
		ClientID: demoClientID, ClientSecret: secret,
		RedirectURIs: []string{base + "/idscallback"},
		Logger:       log.Named("sim"),
	})
	if err != nil {
		ln.Close() // #nosec G104 -- releasing a listener on the demo's error path
		fmt.Fprintln(stderr, "finesse-relay: demo: simulator:", err)
		return exitFail
	}
	cfg, err := demoConfig(s, secret, base, host, actualPort, *origins)
	if err != nil {
		ln.Close() // #nosec G104 -- releasing a listener on the demo's error path
		return reportConfigError(stderr, err)
	}
	cfg.Listener = ln
	app, err := NewApp(cfg, log.Named("relay"))
	if err != nil {
		ln.Close() // #nosec G104 -- releasing a listener on the demo's error path
		return reportConfigError(stderr, err)
	}
	caFile, cleanup, err := writeDemoCA(s.Endpoints().CACertPEM)
	if err != nil {
		ln.Close() // #nosec G104 -- releasing a listener on the demo's error path
		fmt.Fprintln(stderr, "finesse-relay: demo:", err)
		return exitFail
	}
	defer cleanup()
	printDemoBanner(stdout, base, s, *agents, caFile)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Run(gctx) })
	g.Go(func() error { return app.Run(gctx) })
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		log.Error("demo stopped", zap.Error(err))
		return exitFail
	}
	return exitOK
}

// demoConfig points the relay at the simulator.
func demoConfig(s *sim.Sim, secret, base, host, port, origins string) (*Config, error) {
	ep := s.Endpoints()
	set := simRelaySettings(ep, secret, base, "websocket")
	set["LISTEN_HOST"], set["server.port"] = host, port
	set["LOG_FORMAT"], set["SESSION_GRACE"], set["allowedOrigins"] = "console", "30s", origins
	set["STORE"] = "memory"
	cfg, err := LoadConfig(LoadOptions{NoFile: true, Set: set})
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(ep.CACertPEM) {
		return nil, cfgErr("CA_FILE", "the simulator's CA certificate did not parse")
	}
	return cfg, nil
}

// writeDemoCA writes the simulator's CA certificate to a fresh temporary
// directory, so that `check` (CA_FILE) and curl can trust the simulated
// Finesse; cleanup removes it when the demo stops.
func writeDemoCA(pem []byte) (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "finesse-relay-demo-")
	if err != nil {
		return "", nil, fmt.Errorf("create a directory for the simulator's CA: %w", err)
	}
	path = filepath.Join(dir, "demo-ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("write the simulator's CA to %s: %w", path, err)
	}
	return path, func() { _ = os.RemoveAll(dir) }, nil
}

func printDemoBanner(w io.Writer, base string, s *sim.Sim, agents int, caFile string) {
	ep := s.Endpoints()
	var b strings.Builder
	fmt.Fprintf(&b, "\n  Finesse Relay demo — everything on loopback, simulated Finesse + IdS\n\n")
	fmt.Fprintf(&b, "  Agent desktop   %s/            (SSO page: agent1001, agent1002 …; password form: 1001 …; %d agents)\n", base, agents)
	fmt.Fprintf(&b, "  Supervisor      %s/supervisor  (SSO page: super2001; password form: 2001)\n", base)
	fmt.Fprintf(&b, "  Gadget XML      %s/gadget/relay.xml\n", base)
	fmt.Fprintf(&b, "  Health          %s/testbackend\n\n", base)
	fmt.Fprintf(&b, "  Password for every user: demo (SSO button: the simulated IdS page; or the non-SSO form)\n")
	fmt.Fprintf(&b, "  Finesse side A %s:%d, side B %s:%d; IdS %s\n", ep.Sides[0].Host, ep.Sides[0].HTTPSPort, ep.Sides[1].Host, ep.Sides[1].HTTPSPort, ep.IdSURL)
	fmt.Fprintf(&b, "  Simulator CA    %s (finesse-relay check --set CA_FILE=%s ...; curl --cacert)\n", caFile, caFile)
	fmt.Fprintf(&b, "  Simulator control %s (POST /sim/calls, /sim/sides/A ...)\n\n", ep.ControlURL)
	fmt.Fprintf(&b, "  Agents from 1002 up are simulated and take calls; 1001 is yours. Ctrl-C stops everything.\n\n")
	_, _ = io.WriteString(w, b.String())
}
