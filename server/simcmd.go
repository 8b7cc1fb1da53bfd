package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"finesse-relay/server/sim"
)

// simRelaySettings are the relay keys that point it at a simulator: IdS,
// both Finesse sides over transport, and the callback under base (the
// relay's public URL). CA_FILE is the caller's: demo passes the CA in
// memory, sim writes it to a file.
func simRelaySettings(ep sim.Endpoints, secret, base, transport string) map[string]string {
	set := map[string]string{
		"PUBLIC_URL": base, "IDS_URL": ep.IdSURL, "REDIRECT_URI": base + "/idscallback",
		"client_id": demoClientID, "client_secret": secret,
	}
	for _, side := range ep.Sides {
		p := "FINESSE_" + side.Name + "_"
		set[p+"HOST"] = side.Host
		set[p+"HTTPS_PORT"] = strconv.Itoa(side.HTTPSPort)
		set[p+"XMPP_TRANSPORT"] = transport
		port := side.HTTPSPort // websocket and bosh share the HTTPS port
		switch transport {
		case "tcp":
			port = side.XMPPPort
		case "tls":
			port = side.XMPPTLSPort
		}
		set[p+"XMPP_PORT"] = strconv.Itoa(port)
	}
	return set
}

// simFiles are what cmdSim writes into its directory.
const (
	simEnvFile       = "relay.env"
	simCAFile        = "ca.pem"
	simEndpointsFile = "endpoints.json" // sim.Endpoints without the CA, for tools (the bench)
)

// cmdSim runs the simulator alone (side A, side B, IdS, control API) and
// writes a relay.env for serve, the CA file it names and the endpoints as
// JSON into --dir, then prints the relay.env and the CA path.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "address every simulator listener binds (ports are chosen by the system)")
	dir := fs.String("dir", "", "directory for relay.env, ca.pem and endpoints.json (default: a new temporary directory)")
	relayURL := fs.String("relay-url", "http://127.0.0.1:1125", "the relay's public URL (its IdS callback is registered under it)")
	transport := fs.String("transport", "websocket", "XMPP transport written to relay.env: websocket, tls, tcp or bosh")
	agents := fs.Int("agents", 20, "number of simulated agents (1001 upward)")
	seed := fs.Int64("seed", 1, "scenario seed (same seed, same calls)")
	fast := fs.Bool("fast", false, "short ring/talk/wrap-up times")
	robots := fs.Bool("robots", false, "simulated agents 1002+ work calls on their own")
	calls := fs.Duration("call-interval", 0, "mean gap between generated calls (0: the simulator's default, negative: none)")
	forcedLogout := fs.Duration("forced-logout-delay", 0, "how long a user may have no XMPP session before Finesse logs them out (0: 60 s, with --fast 1 s)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "finesse-relay: sim: unexpected argument %q\n", fs.Arg(0))
		return exitConfig
	}
	if !slices.Contains([]string{"websocket", "tls", "tcp", "bosh"}, *transport) {
		fmt.Fprintf(stderr, "finesse-relay: sim: --transport %q: want websocket, tls, tcp or bosh\n", *transport)
		return exitConfig
	}
	if *agents < 1 || *agents > sim.MaxAgents {
		fmt.Fprintf(stderr, "finesse-relay: sim: --agents must be between 1 and %d\n", sim.MaxAgents)
		return exitConfig
	}
	base := strings.TrimSuffix(*relayURL, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		fmt.Fprintf(stderr, "finesse-relay: sim: --relay-url %q: want http(s)://host:port\n", *relayURL)
		return exitConfig
	}
	log, err := newLogger(*logLevel, "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: sim: --log-level:", err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "finesse-relay-sim-"); err != nil {
			fmt.Fprintln(stderr, "finesse-relay: sim:", err)
			return exitFail
		}
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintln(stderr, "finesse-relay: sim: --dir:", err)
		return exitFail
	}
	secret := rand.Text()
	s, err := sim.New(sim.Config{
		Host: *host, Agents: *agents, Seed: *seed, Fast: *fast, Robots: *robots, CallInterval: *calls, ForcedLogoutDelay: *forcedLogout,
		ClientID: demoClientID, ClientSecret: secret, RedirectURIs: []string{base + "/idscallback"},
		Logger: log.Named("sim"),
	})
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: sim:", err)
		return exitFail
	}
	ep := s.Endpoints()
	env, err := writeSimFiles(*dir, ep, simRelaySettings(ep, secret, base, *transport))
	if err != nil {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Run(done) // releases the listeners New bound
		fmt.Fprintln(stderr, "finesse-relay: sim:", err)
		return exitFail
	}
	// The client secret stays in the file (0600), not on the terminal.
	shown := regexp.MustCompile(`(?m)^client_secret=.*$`).ReplaceAllString(env, "client_secret=(in the file)")
	fmt.Fprintf(stdout, "# relay.env for `finesse-relay serve --config %s`\n%s", filepath.Join(*dir, simEnvFile), shown)
	fmt.Fprintf(stdout, "# CA file: %s\n# control API: %s (POST /sim/calls, /sim/sides/A ...)\n", filepath.Join(*dir, simCAFile), ep.ControlURL)
	if err := s.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("simulator stopped", zap.Error(err))
		return exitFail
	}
	return exitOK
}

// writeSimFiles writes ca.pem, relay.env (naming ca.pem) and
// endpoints.json into dir, endpoints.json last and by rename, so a reader
// that sees it sees the other two. It returns relay.env's text.
func writeSimFiles(dir string, ep sim.Endpoints, set map[string]string) (string, error) {
	ca := filepath.Join(dir, simCAFile)
	if err := os.WriteFile(ca, ep.CACertPEM, 0o600); err != nil {
		return "", fmt.Errorf("write the CA file: %w", err)
	}
	set["CA_FILE"] = ca
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, set[k])
	}
	if err := os.WriteFile(filepath.Join(dir, simEnvFile), []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write relay.env: %w", err)
	}
	ep.CACertPEM = nil
	j, err := json.MarshalIndent(ep, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, simEndpointsFile+".tmp")
	if err := os.WriteFile(tmp, j, 0o600); err != nil {
		return "", fmt.Errorf("write endpoints: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, simEndpointsFile)); err != nil {
		return "", fmt.Errorf("write endpoints: %w", err)
	}
	return b.String(), nil
}
