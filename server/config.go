package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"software.sslmate.com/src/go-pkcs12"
)

// Config is the relay's whole configuration, after defaults, the env file,
// environment variables and flags have been applied, in that order.
type Config struct {
	// ListenHost is the interface the relay listens on ("" = all).
	ListenHost string
	// HTTPSPort is the TLS port (server.port, default 1125). When no
	// certificate is configured the relay serves plain HTTP on this port.
	HTTPSPort int
	// HTTPPort is an optional plain HTTP port (server.http.port) that
	// redirects to HTTPS when TLS is on. 0 = off.
	HTTPPort int
	// TLSEnabled reports whether the main port serves HTTPS.
	TLSEnabled bool
	// Certificate is the server certificate when TLSEnabled.
	Certificate *tls.Certificate
	// PublicURL is the relay's external base URL (gadget XML, redirects).
	PublicURL *url.URL

	// IdSURLs are the IdS nodes (publisher, subscriber) tried in order.
	IdSURLs []*url.URL
	// RedirectURL is the relay's /idscallback registered with IdS.
	RedirectURL *url.URL
	// ClientID and ClientSecret are the relay's IdS client registration.
	ClientID, ClientSecret string
	// AllowedOrigins are the browser origins allowed to use the API and the
	// WebSocket ("*" allows any).
	AllowedOrigins []string

	// Sides are the Finesse nodes, A first; B is optional.
	Sides []SideConfig
	// RootCAs verifies Finesse and IdS certificates (nil = system roots).
	RootCAs *x509.CertPool
	// InsecureSkipVerify disables certificate verification (never in production).
	InsecureSkipVerify bool

	// XMPPResource is the resource the relay binds for every agent.
	XMPPResource string
	// PingInterval is the XEP-0199 ping period towards Finesse.
	PingInterval time.Duration
	// SessionGrace keeps an agent's upstream session after its last browser left.
	SessionGrace time.Duration
	// RingSize is the resume buffer length per agent session.
	RingSize int
	// QueueSize is the bounded outbound queue per browser connection.
	QueueSize int
	// TicketTTL is the lifetime of a WebSocket ticket.
	TicketTTL time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration

	// Store is where durable state lives: "memory", "file:PATH", or a
	// redis:// or rediss:// URL ("" = the command's default).
	Store string
	// SessionKeyFile holds the key sealing credentials at rest;
	// PreviousSessionKeyFile an older key accepted for reading.
	SessionKeyFile, PreviousSessionKeyFile string
	// InstanceID names this instance in a shared store ("" = derived).
	InstanceID string
	// ActiveMany: with a shared store every instance serves and owns some
	// agents (ACTIVE_INSTANCES=many); otherwise one is active at a time.
	ActiveMany bool
	// AgentLeaseTTL is the lease of an agent's owner (ACTIVE_INSTANCES=many).
	AgentLeaseTTL time.Duration
	// SignInMaxFailures refused sign-ins per loginId are forwarded to
	// Finesse within SignInFailureWindow; then the relay answers 429.
	SignInMaxFailures int
	// SignInFailureWindow is the window of the sign-in failure counters.
	SignInFailureWindow time.Duration
	// MaxSocketsPerSession bounds WebSockets per relay session.
	MaxSocketsPerSession int
	// MaxTicketsPerSession bounds unredeemed tickets per relay session.
	MaxTicketsPerSession int
	// UpstreamConnectConcurrency bounds upstream connects in flight.
	UpstreamConnectConcurrency int
	// MetricsListen is a separate address for /metrics ("" = public port).
	MetricsListen string
	// MetricsTokenFile holds a bearer token /metrics requires ("" = none).
	MetricsTokenFile string
	// PProf serves net/http/pprof under /debug/pprof/ on MetricsListen
	// (never on the public port; refused without MetricsListen).
	PProf bool

	// LogLevel is debug, info, warn or error; LogFormat json, console or auto.
	LogLevel, LogFormat string

	// Warnings collects non-fatal findings (insecure settings) for the log.
	Warnings []string

	// Listener, when set, is used instead of binding server.port (the demo
	// binds first to learn its port).
	Listener net.Listener
}

// SideConfig is one Finesse node and how to reach its services.
type SideConfig struct {
	Name          string // "A" or "B"
	Host          string // FQDN; also the TLS server name
	HTTPSPort     int    // REST port (8445)
	XMPPTransport string // websocket, tls, tcp, bosh or auto
	XMPPHost      string // host for XMPP (defaults to Host)
	XMPPPort      int    // port for the chosen transport
	XMPPDomain    string // overrides SystemInfo's xmppDomain when set
}

// BaseURL is the side's REST base URL.
func (s SideConfig) BaseURL() string {
	return "https://" + net.JoinHostPort(s.Host, strconv.Itoa(s.HTTPSPort))
}

// key describes one configuration key: its canonical name, the other names
// it is accepted under, its default and what it means.
type key struct {
	name    string
	aliases []string
	def     string
	help    string
}

// keys lists every accepted key. The SSO Utility's keys come first, under
// their original spellings.
var keys = []key{
	{"IDS_URL", []string{"ids1_url"}, "", "Cisco IdS base URL(s), comma separated (publisher first), e.g. https://ids.example.com:8553"},
	{"ids2_url", nil, "", "second IdS node (subscriber), tried when the first fails"},
	{"REDIRECT_URI", []string{"redirect_base_uri"}, "", "the relay's OAuth callback registered in IdS, e.g. https://relay.example.com:1125/idscallback (a base URL gets /idscallback appended)"},
	{"client_id", nil, "", "the relay's IdS client id"},
	{"client_secret", nil, "", "the relay's IdS client secret"},
	{"server.port", nil, "1125", "HTTPS port (plain HTTP when no certificate is configured)"},
	{"server.http.port", nil, "0", "optional plain HTTP port; redirects to HTTPS when TLS is on (0 = off)"},
	{"allowedOrigins", nil, "", "browser origins allowed to call the API and open the WebSocket, comma separated (the Finesse desktop origin, e.g. https://finesse-a.example.com:8445); * allows any (warned)"},
	{"server.ssl.enabled", nil, "", "true to serve HTTPS (default: true when a certificate is configured)"},
	{"server.ssl.key-store-type", nil, "PKCS12", "PKCS12 or PEM"},
	{"server.ssl.key-store", nil, "", "PKCS12 keystore file (.p12/.pfx) with the server certificate and key"},
	{"server.ssl.key-store-password", nil, "", "password of the PKCS12 keystore"},
	{"server.ssl.certificate", nil, "", "PEM certificate chain file (with key-store-type PEM)"},
	{"server.ssl.certificate-private-key", nil, "", "PEM private key file (with key-store-type PEM)"},
	{"LISTEN_HOST", nil, "", "interface to listen on (empty = all)"},
	{"PUBLIC_URL", nil, "", "external base URL of the relay (default: derived from REDIRECT_URI, else the listen address)"},
	{"FINESSE_A_HOST", nil, "", "Finesse side A FQDN (must match its certificate)"},
	{"FINESSE_A_HTTPS_PORT", nil, "8445", "Finesse side A REST port"},
	{"FINESSE_A_XMPP_TRANSPORT", nil, "websocket", "websocket (wss://host:port/ws), tls (5223), tcp (STARTTLS, 5222), bosh (https://host:port/http-bind) or auto"},
	{"FINESSE_A_XMPP_HOST", nil, "", "XMPP host of side A when it differs from FINESSE_A_HOST (VPN-less proxy, test peer)"},
	{"FINESSE_A_XMPP_PORT", nil, "", "XMPP port of side A (default by transport: websocket 8445, tls 5223, tcp 5222, bosh 7443)"},
	{"FINESSE_A_XMPP_DOMAIN", nil, "", "XMPP domain of side A (default: SystemInfo xmppDomain)"},
	{"FINESSE_B_HOST", nil, "", "Finesse side B FQDN (empty = single node)"},
	{"FINESSE_B_HTTPS_PORT", nil, "8445", "Finesse side B REST port"},
	{"FINESSE_B_XMPP_TRANSPORT", nil, "websocket", "as FINESSE_A_XMPP_TRANSPORT"},
	{"FINESSE_B_XMPP_HOST", nil, "", "as FINESSE_A_XMPP_HOST"},
	{"FINESSE_B_XMPP_PORT", nil, "", "as FINESSE_A_XMPP_PORT"},
	{"FINESSE_B_XMPP_DOMAIN", nil, "", "as FINESSE_A_XMPP_DOMAIN"},
	{"CA_FILE", nil, "", "PEM bundle of the CAs that signed the Finesse and IdS certificates (default: system roots)"},
	{"INSECURE_SKIP_VERIFY", nil, "false", "true disables certificate checks towards Finesse and IdS (lab only; loudly warned)"},
	{"XMPP_RESOURCE", nil, "finesse-relay", "XMPP resource bound for every agent (never 'desktop')"},
	{"XMPP_PING_INTERVAL", nil, "10s", "XEP-0199 ping interval towards the Notification Service"},
	{"SESSION_GRACE", nil, "30s", "how long an agent's upstream session outlives its last browser connection"},
	{"RESUME_RING_SIZE", nil, "1024", "messages kept per agent for browser resume"},
	{"CONNECTION_QUEUE_SIZE", nil, "256", "outbound queue per browser connection; a connection that overflows it is closed (4000) and resumes"},
	{"TICKET_TTL", nil, "30s", "lifetime of a single-use WebSocket ticket"},
	{"SHUTDOWN_TIMEOUT", nil, "15s", "graceful shutdown bound"},
	{"STORE", nil, "", "where relay sessions, tickets and sealed credentials live: memory, file:PATH (bbolt; default for serve: finesse-relay.db in the state directory), or redis://host:6379/0, rediss://… (several instances share one Redis; see ACTIVE_INSTANCES)"},
	{"SESSION_KEY_FILE", nil, "", "file with the 32-byte key (base64) that seals credentials at rest (default: session.key beside the file store, generated with mode 0600; required and identical on every instance with Redis)"},
	{"SESSION_KEY_FILE_PREVIOUS", nil, "", "an older sealing key still accepted for reading, during key rotation"},
	{"INSTANCE_ID", nil, "", "this instance's name in a shared store (default: hostname and port)"},
	{"AGENT_LEASE_TTL", nil, "15s", "with ACTIVE_INSTANCES=many: how long an agent's lease outlives its owner instance (then another instance adopts the agent)"},
	{"ACTIVE_INSTANCES", nil, "one", "with a Redis STORE: one (one instance serves, the others wait as standbys) or many (every instance serves behind a load balancer; each agent's upstream session is owned by one of them)"},
	{"SIGNIN_MAX_FAILURES", nil, "3", "refused sign-ins forwarded to Finesse per loginId within SIGNIN_FAILURE_WINDOW; after that the relay answers 429 itself (keep below Finesse's lockout threshold, 5)"},
	{"SIGNIN_FAILURE_WINDOW", nil, "15m", "window over which refused sign-ins are counted per loginId and per client address"},
	{"MAX_SOCKETS_PER_SESSION", nil, "16", "WebSockets open at once per relay session (one browser sign-in)"},
	{"MAX_TICKETS_PER_SESSION", nil, "16", "unredeemed WebSocket tickets outstanding per relay session"},
	{"UPSTREAM_CONNECT_CONCURRENCY", nil, "64", "upstream Finesse connects (SystemInfo, XMPP login, snapshot) in flight at once; bounds sign-in and failover storms"},
	{"METRICS_LISTEN", nil, "", "separate host:port serving /metrics (then the public port does not serve it), e.g. 127.0.0.1:9125"},
	{"METRICS_TOKEN_FILE", nil, "", "file holding a bearer token /metrics requires (on the public port, and on METRICS_LISTEN too); without it and without METRICS_LISTEN, /metrics is served only when the public port listens on loopback"},
	{"PPROF", nil, "false", "true serves Go's profiles (net/http/pprof) under /debug/pprof/ on METRICS_LISTEN only (never on the public port; needs METRICS_LISTEN, and the METRICS_TOKEN_FILE token when set), e.g. go tool pprof http://127.0.0.1:9125/debug/pprof/profile?seconds=30"},
	{"LOG_LEVEL", nil, "info", "debug, info, warn or error"},
	{"LOG_FORMAT", nil, "auto", "json, console, or auto (console on a terminal, json otherwise)"},
}

// ConfigError is a configuration problem, named by key or file, with what to do.
type ConfigError struct {
	Key string // the key or file at fault
	Msg string // what is wrong and what to do
}

func (e *ConfigError) Error() string { return "config: " + e.Key + ": " + e.Msg }

func cfgErr(key, format string, args ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// canonical maps every accepted spelling (lower-cased) and environment name to
// the canonical key name.
func canonical() map[string]string {
	m := make(map[string]string)
	for _, k := range keys {
		for _, n := range append([]string{k.name}, k.aliases...) {
			m[strings.ToLower(n)] = k.name
		}
	}
	return m
}

// envName is the environment variable form of a key: upper case, dots and
// dashes as underscores, camelCase split (allowedOrigins -> ALLOWED_ORIGINS).
func envName(n string) string {
	var b strings.Builder
	for i, r := range n {
		switch {
		case r == '.' || r == '-':
			b.WriteByte('_')
		case r >= 'A' && r <= 'Z' && i > 0 && n[i-1] >= 'a' && n[i-1] <= 'z':
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteString(strings.ToUpper(string(r)))
		}
	}
	return b.String()
}

// parseEnvFile reads KEY=VALUE lines (# comments, optional quotes, optional
// "export "). Unknown keys are errors naming the file and line.
func parseEnvFile(path string, data []byte, names map[string]string, into map[string]string) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimPrefix(s, "export ")
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return cfgErr(fmt.Sprintf("%s:%d", path, line), "expected KEY=VALUE, got %q", s)
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		name, known := names[strings.ToLower(k)]
		if !known {
			return cfgErr(fmt.Sprintf("%s:%d", path, line), "unknown key %q (see configs/relay.env.example for every key)", k)
		}
		into[name] = v
	}
	if err := sc.Err(); err != nil {
		return cfgErr(path, "read: %v", err)
	}
	return nil
}

// LoadOptions says where configuration comes from.
type LoadOptions struct {
	File         string              // env file; "" = relay.env if it exists
	FileRequired bool                // the file was named explicitly
	NoFile       bool                // read no file at all (demo)
	Getenv       func(string) string // environment lookup
	Set          map[string]string   // flag overrides (--set KEY=VALUE and named flags)
	Defaults     map[string]string   // command-specific defaults (demo)
}

// LoadConfig applies defaults, the env file, environment variables and flags,
// then validates everything. Every error is a *ConfigError.
func LoadConfig(o LoadOptions) (*Config, error) {
	names := canonical()
	raw := make(map[string]string)
	for _, k := range keys {
		raw[k.name] = k.def
	}
	for k, v := range o.Defaults {
		raw[names[strings.ToLower(k)]] = v
	}
	file := o.File
	if file == "" {
		file = "relay.env"
	}
	data, err := os.ReadFile(file) // #nosec G304 -- the env file the operator named (--config); reading it is the point
	if o.NoFile {
		data, err = nil, os.ErrNotExist
	}
	switch {
	case err == nil:
		if err := parseEnvFile(file, data, names, raw); err != nil {
			return nil, err
		}
	case errors.Is(err, os.ErrNotExist) && (!o.FileRequired || o.NoFile):
	default:
		return nil, cfgErr(file, "cannot read the config file: %v (check the --config path and permissions)", err)
	}
	if o.Getenv != nil {
		for _, k := range keys {
			for _, n := range append([]string{k.name}, k.aliases...) {
				if v := o.Getenv(envName(n)); v != "" {
					raw[k.name] = v
				}
			}
		}
	}
	for k, v := range o.Set {
		name, ok := names[strings.ToLower(k)]
		if !ok {
			return nil, cfgErr(k, "unknown key (see configs/relay.env.example for every key)")
		}
		raw[name] = v
	}
	return buildConfig(raw)
}

func buildConfig(raw map[string]string) (*Config, error) {
	c := &Config{
		ListenHost:   raw["LISTEN_HOST"],
		ClientID:     raw["client_id"],
		ClientSecret: raw["client_secret"],
		XMPPResource: raw["XMPP_RESOURCE"],
		Store:        raw["STORE"],
		InstanceID:   raw["INSTANCE_ID"],

		SessionKeyFile:         raw["SESSION_KEY_FILE"],
		PreviousSessionKeyFile: raw["SESSION_KEY_FILE_PREVIOUS"],
		MetricsListen:          raw["METRICS_LISTEN"],
		MetricsTokenFile:       raw["METRICS_TOKEN_FILE"],
		LogLevel:               strings.ToLower(raw["LOG_LEVEL"]),
		LogFormat:              strings.ToLower(raw["LOG_FORMAT"]),
	}
	switch strings.ToLower(raw["ACTIVE_INSTANCES"]) {
	case "", "one":
	case "many":
		c.ActiveMany = true
	default:
		return nil, cfgErr("ACTIVE_INSTANCES", "%q: use one or many", raw["ACTIVE_INSTANCES"])
	}
	if lower := strings.ToLower(c.Store); c.ActiveMany && !strings.HasPrefix(lower, "redis://") && !strings.HasPrefix(lower, "rediss://") {
		return nil, cfgErr("ACTIVE_INSTANCES", "many needs a STORE shared by every instance (redis://… or rediss://…), not %q", c.Store)
	}
	var err error
	if c.HTTPSPort, err = portValue("server.port", raw["server.port"], false); err != nil {
		return nil, err
	}
	if c.HTTPPort, err = portValue("server.http.port", raw["server.http.port"], true); err != nil {
		return nil, err
	}
	if c.HTTPPort != 0 && c.HTTPPort == c.HTTPSPort {
		return nil, cfgErr("server.http.port", "equals server.port (%d); pick another port or 0", c.HTTPPort)
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{
		{"XMPP_PING_INTERVAL", &c.PingInterval}, {"SESSION_GRACE", &c.SessionGrace},
		{"TICKET_TTL", &c.TicketTTL}, {"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout},
		{"SIGNIN_FAILURE_WINDOW", &c.SignInFailureWindow}, {"AGENT_LEASE_TTL", &c.AgentLeaseTTL},
	} {
		if *d.dst, err = durationValue(d.key, raw[d.key]); err != nil {
			return nil, err
		}
	}
	if c.AgentLeaseTTL < 3*time.Second || c.AgentLeaseTTL > 45*time.Second {
		return nil, cfgErr("AGENT_LEASE_TTL", "%v: use 3s to 45s (a dead instance's agents wait this long for another one; Finesse logs an agent out 60 s after its presence goes)", c.AgentLeaseTTL)
	}
	if c.RingSize, err = intValue("RESUME_RING_SIZE", raw["RESUME_RING_SIZE"], 16, 1<<20); err != nil {
		return nil, err
	}
	if c.QueueSize, err = intValue("CONNECTION_QUEUE_SIZE", raw["CONNECTION_QUEUE_SIZE"], 8, 1<<16); err != nil {
		return nil, err
	}
	for _, n := range []struct {
		key    string
		dst    *int
		lo, hi int
	}{
		{"SIGNIN_MAX_FAILURES", &c.SignInMaxFailures, 1, 4},
		{"MAX_SOCKETS_PER_SESSION", &c.MaxSocketsPerSession, 1, 1024},
		{"MAX_TICKETS_PER_SESSION", &c.MaxTicketsPerSession, 1, 1024},
		{"UPSTREAM_CONNECT_CONCURRENCY", &c.UpstreamConnectConcurrency, 1, 4096},
	} {
		if *n.dst, err = intValue(n.key, raw[n.key], n.lo, n.hi); err != nil {
			return nil, err
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, cfgErr("LOG_LEVEL", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console", "auto":
	default:
		return nil, cfgErr("LOG_FORMAT", "%q is not one of json, console, auto", c.LogFormat)
	}
	if c.XMPPResource == "" || strings.EqualFold(c.XMPPResource, "desktop") || strings.ContainsAny(c.XMPPResource, "/@ ") {
		return nil, cfgErr("XMPP_RESOURCE", "%q is not usable: it must be non-empty, without '/', '@' or spaces, and never 'desktop' (reserved for the Finesse desktop)", c.XMPPResource)
	}
	if c.InsecureSkipVerify, err = boolValue("INSECURE_SKIP_VERIFY", raw["INSECURE_SKIP_VERIFY"]); err != nil {
		return nil, err
	}
	if c.PProf, err = boolValue("PPROF", raw["PPROF"]); err != nil {
		return nil, err
	}
	if c.PProf && c.MetricsListen == "" {
		return nil, cfgErr("PPROF", "true needs METRICS_LISTEN (profiles are served only on that separate address, e.g. 127.0.0.1:9125, never on the public port): set METRICS_LISTEN or PPROF=false")
	}
	if c.InsecureSkipVerify {
		c.Warnings = append(c.Warnings, "INSECURE_SKIP_VERIFY=true: Finesse and IdS certificates are NOT verified; anyone on the path can read agents' tokens. Use CA_FILE instead.")
	}
	if f := raw["CA_FILE"]; f != "" {
		pem, err := os.ReadFile(f) // #nosec G304 -- the certificate/CA file the operator configured; reading it is the point
		if err != nil {
			return nil, cfgErr("CA_FILE", "cannot read %s: %v", f, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, cfgErr("CA_FILE", "%s holds no PEM certificate (export the Finesse tomcat/IdS CA as .pem)", f)
		}
	}
	if err := loadServerCert(c, raw); err != nil {
		return nil, err
	}
	for _, u := range append(splitList(raw["IDS_URL"]), splitList(raw["ids2_url"])...) {
		p, err := absURL("IDS_URL", u, "https://ids.example.com:8553")
		if err != nil {
			return nil, err
		}
		c.IdSURLs = append(c.IdSURLs, p)
	}
	if r := raw["REDIRECT_URI"]; r != "" {
		p, err := absURL("REDIRECT_URI", r, "https://relay.example.com:1125/idscallback")
		if err != nil {
			return nil, err
		}
		if p.Path == "" || p.Path == "/" {
			p.Path = "/idscallback"
		}
		c.RedirectURL = p
	}
	if len(c.IdSURLs) > 0 {
		if c.ClientID == "" {
			return nil, cfgErr("client_id", "IDS_URL is set but client_id is empty: copy the client id shown in IdS admin (Clients)")
		}
		if c.RedirectURL == nil {
			return nil, cfgErr("REDIRECT_URI", "IDS_URL is set but REDIRECT_URI is empty: set the callback URL registered for client_id in IdS, e.g. https://relay.example.com:1125/idscallback")
		}
	}
	switch pu := raw["PUBLIC_URL"]; {
	case pu != "":
		if c.PublicURL, err = absURL("PUBLIC_URL", pu, "https://relay.example.com:1125"); err != nil {
			return nil, err
		}
	case c.RedirectURL != nil:
		c.PublicURL = &url.URL{Scheme: c.RedirectURL.Scheme, Host: c.RedirectURL.Host}
	default:
		scheme, host := "http", c.ListenHost
		if c.TLSEnabled {
			scheme = "https"
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.PublicURL = &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(c.HTTPSPort))}
	}
	c.PublicURL.Path = strings.TrimSuffix(c.PublicURL.Path, "/")
	for _, o := range splitList(raw["allowedOrigins"]) {
		if o == "*" {
			c.Warnings = append(c.Warnings, "allowedOrigins=*: any web page may open agents' WebSockets with a ticket; list the Finesse origins instead.")
			c.AllowedOrigins = append(c.AllowedOrigins, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, cfgErr("allowedOrigins", "%q is not an origin: write scheme://host[:port], e.g. https://finesse-a.example.com:8445", o)
		}
		c.AllowedOrigins = append(c.AllowedOrigins, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	if raw["FINESSE_A_HOST"] == "" && raw["FINESSE_B_HOST"] != "" {
		return nil, cfgErr("FINESSE_A_HOST", "side B is set but side A is empty: put the primary node in FINESSE_A_HOST")
	}
	for _, side := range []string{"A", "B"} {
		s, err := sideValue(side, raw)
		if err != nil {
			return nil, err
		}
		if s != nil {
			c.Sides = append(c.Sides, *s)
		}
	}
	return c, nil
}

// xmppDefaultPorts are the Finesse defaults per transport.
var xmppDefaultPorts = map[string]int{"websocket": 8445, "tls": 5223, "tcp": 5222, "bosh": 7443, "auto": 8445}

func sideValue(side string, raw map[string]string) (*SideConfig, error) {
	p := "FINESSE_" + side + "_"
	host := raw[p+"HOST"]
	if host == "" {
		return nil, nil
	}
	if strings.Contains(host, "/") || strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return nil, cfgErr(p+"HOST", "%q must be a bare host name (the port goes in %sHTTPS_PORT)", host, p)
	}
	s := &SideConfig{Name: side, Host: host, XMPPHost: raw[p+"XMPP_HOST"], XMPPDomain: raw[p+"XMPP_DOMAIN"]}
	var err error
	if s.HTTPSPort, err = portValue(p+"HTTPS_PORT", raw[p+"HTTPS_PORT"], false); err != nil {
		return nil, err
	}
	s.XMPPTransport = strings.ToLower(raw[p+"XMPP_TRANSPORT"])
	def, ok := xmppDefaultPorts[s.XMPPTransport]
	if !ok {
		return nil, cfgErr(p+"XMPP_TRANSPORT", "%q is not one of websocket, tls, tcp, bosh, auto", s.XMPPTransport)
	}
	s.XMPPPort = def
	if v := raw[p+"XMPP_PORT"]; v != "" {
		if s.XMPPPort, err = portValue(p+"XMPP_PORT", v, false); err != nil {
			return nil, err
		}
	} else if s.XMPPTransport == "websocket" || s.XMPPTransport == "auto" {
		s.XMPPPort = s.HTTPSPort
	}
	if s.XMPPHost == "" {
		s.XMPPHost = host
	}
	return s, nil
}

func loadServerCert(c *Config, raw map[string]string) error {
	typ := strings.ToUpper(raw["server.ssl.key-store-type"])
	store, pemCert, pemKey := raw["server.ssl.key-store"], raw["server.ssl.certificate"], raw["server.ssl.certificate-private-key"]
	haveCert := store != "" || pemCert != ""
	enabled := haveCert
	if v := raw["server.ssl.enabled"]; v != "" {
		b, err := boolValue("server.ssl.enabled", v)
		if err != nil {
			return err
		}
		enabled = b
	}
	if !enabled {
		if c.HTTPPort != 0 {
			return cfgErr("server.http.port", "set, but TLS is off so server.port already serves plain HTTP; remove server.http.port or configure a certificate")
		}
		return nil
	}
	if !haveCert {
		return cfgErr("server.ssl.enabled", "true, but no certificate: set server.ssl.key-store (PKCS12) or server.ssl.certificate + server.ssl.certificate-private-key (PEM)")
	}
	c.TLSEnabled = true
	switch {
	case pemCert != "" || typ == "PEM":
		if pemCert == "" || pemKey == "" {
			return cfgErr("server.ssl.certificate", "PEM needs both server.ssl.certificate and server.ssl.certificate-private-key")
		}
		cert, err := tls.LoadX509KeyPair(pemCert, pemKey)
		if err != nil {
			return cfgErr("server.ssl.certificate", "cannot load %s with key %s: %v", pemCert, pemKey, err)
		}
		c.Certificate = &cert
	case typ == "PKCS12" || typ == "PFX":
		data, err := os.ReadFile(store) // #nosec G304 -- the store file the operator configured; reading it is the point
		if err != nil {
			return cfgErr("server.ssl.key-store", "cannot read %s: %v", store, err)
		}
		key, leaf, chain, err := pkcs12.DecodeChain(data, raw["server.ssl.key-store-password"])
		if err != nil {
			if errors.Is(err, pkcs12.ErrIncorrectPassword) {
				return cfgErr("server.ssl.key-store-password", "wrong password for %s", store)
			}
			return cfgErr("server.ssl.key-store", "%s is not a usable PKCS12 keystore: %v", store, err)
		}
		cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
		for _, ca := range chain {
			cert.Certificate = append(cert.Certificate, ca.Raw)
		}
		c.Certificate = &cert
	default:
		return cfgErr("server.ssl.key-store-type", "%q is not PKCS12 or PEM", typ)
	}
	if leaf := c.Certificate.Leaf; leaf != nil && time.Now().After(leaf.NotAfter) {
		return cfgErr("server.ssl.key-store", "the server certificate expired on %s; renew it", leaf.NotAfter.Format(time.DateOnly))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func absURL(key, v, example string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, cfgErr(key, "%q is not an absolute http(s) URL, e.g. %s", v, example)
	}
	return u, nil
}

func portValue(key, v string, zeroOK bool) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return 0, cfgErr(key, "%q is not a port number (1-65535)", v)
	}
	return n, nil
}

func intValue(key, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, cfgErr(key, "%q must be a whole number between %d and %d", v, lo, hi)
	}
	return n, nil
}

func durationValue(key, v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, cfgErr(key, "%q is not a positive duration such as 30s or 2m", v)
	}
	return d, nil
}

func boolValue(key, v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, cfgErr(key, "%q is not true or false", v)
	}
	return b, nil
}

// logFields describes the effective configuration without secrets.
func (c *Config) logFields() []zap.Field {
	sides := make([]string, 0, len(c.Sides))
	for _, s := range c.Sides {
		sides = append(sides, fmt.Sprintf("%s=%s (xmpp %s %s:%d)", s.Name, s.BaseURL(), s.XMPPTransport, s.XMPPHost, s.XMPPPort))
	}
	ids := make([]string, 0, len(c.IdSURLs))
	for _, u := range c.IdSURLs {
		ids = append(ids, u.String())
	}
	sort.Strings(c.AllowedOrigins)
	return []zap.Field{
		zap.Strings("finesse", sides), zap.Strings("ids", ids), zap.Bool("tls", c.TLSEnabled),
		zap.Int("port", c.HTTPSPort), zap.Strings("allowedOrigins", c.AllowedOrigins),
		zap.String("publicURL", c.PublicURL.String()),
	}
}
