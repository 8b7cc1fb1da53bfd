package xmpp

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"finesse-relay/xmpp/bosh"
)

// dialBOSH opens a BOSH (XEP-0124/XEP-0206) session with package bosh,
// which carries the XMPP stream as a net.Conn byte stream. normalize has
// already checked the URL (https, or http on loopback with AllowInsecure).
func dialBOSH(ctx context.Context, cfg Config) (net.Conn, error) {
	c, err := bosh.Dial(ctx, bosh.Config{
		URL:          cfg.Address,
		Domain:       cfg.Domain,
		TLSConfig:    cfg.TLSConfig,
		MaxBodySize:  max(bosh.DefaultMaxBodySize, cfg.MaxStanzaSize),
		CloseTimeout: cfg.CloseTimeout,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("xmpp: bosh %s: %w", redact(cfg.Address), err)
	}
	return &deadlineConn{Conn: c, timeout: cfg.WriteTimeout}, nil
}

// redact drops credentials and the query from a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad url)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
