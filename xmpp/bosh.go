package xmpp

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// errBOSHUnavailable is returned while package xmpp/bosh is not wired in.
var errBOSHUnavailable = errors.New("xmpp: the bosh transport is not available in this build")

// dialBOSH opens a BOSH (XEP-0124/XEP-0206) session as a byte stream.
func dialBOSH(ctx context.Context, cfg Config) (net.Conn, error) {
	_ = ctx
	return nil, fmt.Errorf("%w (%s)", errBOSHUnavailable, cfg.Address)
}
