package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"finesse-relay/server/rest"
)

// checkTimeout bounds every probe of the check command.
const checkTimeout = 8 * time.Second

// checker prints one line per finding and counts failures.
type checker struct {
	out   io.Writer
	fails int
}

func (c *checker) ok(format string, args ...any) { fmt.Fprintf(c.out, "  ok    "+format+"\n", args...) }
func (c *checker) warn(format string, args ...any) {
	fmt.Fprintf(c.out, "  warn  "+format+"\n", args...)
}
func (c *checker) fail(format string, args ...any) {
	c.fails++
	fmt.Fprintf(c.out, "  FAIL  "+format+"\n", args...)
}

// cmdCheck validates the configuration, then reaches every upstream and
// explains what it finds: certificates, IdS, SystemInfo of each side.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, code := parseConfig("check", args, stderr, getenv)
	if cfg == nil {
		return code
	}
	c := &checker{out: stdout}
	fmt.Fprintln(stdout, "configuration")
	c.ok("loaded and valid; the relay would listen on port %d (%s)", cfg.HTTPSPort, map[bool]string{true: "HTTPS", false: "plain HTTP"}[cfg.TLSEnabled])
	for _, w := range cfg.Warnings {
		c.warn("%s", w)
	}
	if l := raiseNoFileLimit(fdsWanted); l.sessions() < plannedSessions {
		c.warn("file descriptors: RLIMIT_NOFILE %d (hard %d) leaves room for about %d sessions; %d sessions need %d (2 per session): raise LimitNOFILE in the service unit or ulimit -n", l.Soft, l.Hard, l.sessions(), plannedSessions, fdsWanted)
	} else {
		c.ok("file descriptors: RLIMIT_NOFILE %d, room for about %d sessions", l.Soft, l.sessions())
	}
	if cfg.Certificate != nil && cfg.Certificate.Leaf != nil {
		leaf := cfg.Certificate.Leaf
		days := int(time.Until(leaf.NotAfter).Hours() / 24)
		msg := fmt.Sprintf("server certificate %q valid until %s (%d days)", leaf.Subject.CommonName, leaf.NotAfter.Format(time.DateOnly), days)
		if days < 30 {
			c.warn("%s: renew it soon", msg)
		} else {
			c.ok("%s", msg)
		}
	}
	if len(cfg.AllowedOrigins) == 0 {
		c.warn("allowedOrigins is empty: only the relay's own pages can use it (a gadget inside Finesse needs the Finesse desktop origin, e.g. https://finesse-a.example.com:8445)")
	}
	hc := newUpstreamHTTPClient(cfg)
	hc.Timeout = checkTimeout

	fmt.Fprintln(stdout, "identity service")
	if len(cfg.IdSURLs) == 0 {
		c.warn("IDS_URL not set: SSO sign-in through /login is off (gadget tokens and passwords still work)")
	}
	for _, u := range cfg.IdSURLs {
		checkTLS(ctx, c, "IdS "+u.Host, u, cfg)
		probe := *u
		probe.Path = strings.TrimSuffix(probe.Path, "/") + "/ids/v1/oauth/authorize"
		probe.RawQuery = url.Values{"response_type": {"code"}, "client_id": {cfg.ClientID}, "redirect_uri": {cfg.RedirectURL.String()}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, probe.String(), nil)
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		rsp, err := hc.Do(req)
		switch {
		case err != nil:
			c.fail("IdS %s unreachable: %v", u.Host, err)
		case rsp.StatusCode >= 500:
			c.fail("IdS %s answers %s on the authorize endpoint", u.Host, rsp.Status)
		case rsp.StatusCode == http.StatusBadRequest:
			c.fail("IdS %s refuses client_id %q with redirect %s (%s): check the client registration in IdS admin", u.Host, cfg.ClientID, cfg.RedirectURL, rsp.Status)
		default:
			c.ok("IdS %s answers the authorize endpoint (%s)", u.Host, rsp.Status)
		}
		if rsp != nil {
			rsp.Body.Close() // #nosec G104 -- closing a response body after its status was read
		}
		hc.CheckRedirect = nil
	}

	fmt.Fprintln(stdout, "finesse")
	if len(cfg.Sides) == 0 {
		c.fail("FINESSE_A_HOST is not set: the relay has no Finesse to talk to")
	}
	for _, s := range cfg.Sides {
		base, _ := url.Parse(s.BaseURL())
		checkTLS(ctx, c, "side "+s.Name+" REST", base, cfg)
		rc := rest.New(rest.Config{HTTPClient: hc, Timeout: checkTimeout, Side: func() rest.Side { return rest.Side{Name: s.Name, BaseURL: s.BaseURL()} }})
		si, err := rc.SystemInfo(ctx)
		var apiErr *rest.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
			c.ok("side %s REST answers (SystemInfo needs credentials on this release: HTTP %d)", s.Name, apiErr.Status)
		case err != nil:
			c.fail("side %s SystemInfo at %s: %v", s.Name, s.BaseURL(), err)
		default:
			line := fmt.Sprintf("side %s SystemInfo: %s, deployment %s, auth mode %s, XMPP domain %s", s.Name, si.Status, si.DeploymentType, si.SystemAuthMode, si.XMPPDomain)
			if !strings.EqualFold(si.Status, "IN_SERVICE") {
				c.warn("%s (%s): agents will be sent to the other side", line, si.StatusReason)
			} else {
				c.ok("%s", line)
			}
		}
		addr := net.JoinHostPort(s.XMPPHost, strconv.Itoa(s.XMPPPort))
		d := net.Dialer{Timeout: checkTimeout}
		if conn, err := d.DialContext(ctx, "tcp", addr); err != nil {
			c.fail("side %s XMPP (%s) at %s unreachable: %v", s.Name, s.XMPPTransport, addr, err)
		} else {
			conn.Close() // #nosec G104 -- closing a probe connection that did its job
			c.ok("side %s XMPP (%s) port %s reachable", s.Name, s.XMPPTransport, addr)
		}
	}
	if c.fails > 0 {
		fmt.Fprintf(stdout, "\n%d problem(s) found\n", c.fails)
		return exitFail
	}
	fmt.Fprintln(stdout, "\nall checks passed")
	return exitOK
}

// checkTLS connects to u's host and explains certificate problems in terms
// of what to configure.
func checkTLS(ctx context.Context, c *checker, what string, u *url.URL, cfg *Config) {
	if u.Scheme != "https" {
		c.warn("%s uses %s, not https", what, u.Scheme)
		return
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "443"
	}
	// The probe verifies exactly as the relay will: INSECURE_SKIP_VERIFY
	// turns verification off here too (and says so).
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: checkTimeout}, Config: &tls.Config{RootCAs: cfg.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}} // #nosec G402 -- opt-in INSECURE_SKIP_VERIFY, loudly warned
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		var unknown x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		switch {
		case errors.As(err, &unknown):
			c.fail("%s certificate is signed by an unknown CA: put that CA in CA_FILE (export it from the server's Certificate Management as PEM)", what)
		case errors.As(err, &hostErr):
			c.fail("%s certificate does not name %q (%v): use the host name the certificate was issued for", what, host, err)
		default:
			c.fail("%s TLS handshake with %s:%s failed: %v", what, host, port, err)
		}
		return
	}
	defer conn.Close()
	leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	days := int(time.Until(leaf.NotAfter).Hours() / 24)
	if cfg.InsecureSkipVerify {
		c.warn("%s certificate NOT verified (INSECURE_SKIP_VERIFY=true); it is valid until %s", what, leaf.NotAfter.Format(time.DateOnly))
		return
	}
	if days < 30 {
		c.warn("%s certificate expires in %d days (%s)", what, days, leaf.NotAfter.Format(time.DateOnly))
	} else {
		c.ok("%s certificate trusted, valid until %s", what, leaf.NotAfter.Format(time.DateOnly))
	}
}
