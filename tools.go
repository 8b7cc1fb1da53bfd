//go:build tools

package tools

import (
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/gorilla/websocket"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.uber.org/goleak"
	_ "go.uber.org/zap"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/errgroup"
	_ "mellium.im/sasl"
	_ "mellium.im/xmlstream"
	_ "mellium.im/xmpp"
	_ "software.sslmate.com/src/go-pkcs12"
)
