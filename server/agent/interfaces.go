package agent

import (
	"context"
	"errors"
	"time"

	"finesse-relay/server/cred"
	"finesse-relay/xmpp/finesse"
)

// Notifier is one Notification Service session (satisfied by *xmpp.Client
// through the server's adapter).
type Notifier interface {
	// Run serves the session until it ends; the error says why.
	Run(ctx context.Context) error
	Subscribe(ctx context.Context, node string) error
	Unsubscribe(ctx context.Context, node string) error
	// PruneSubscriptions removes subscriptions an earlier session of ours
	// left behind, keeping the nodes listed.
	PruneSubscriptions(ctx context.Context, keep []string) (int, error)
	// Close unsubscribes, sends unavailable presence and closes.
	Close() error
}

// DialRequest is what a DialFunc needs to open one agent's session on a side.
type DialRequest struct {
	Side              string // side name, e.g. "A"
	Domain            string // xmppDomain from SystemInfo
	PubSubDomain      string // xmppPubSubDomain from SystemInfo
	Username          string // loginId
	Password          string // password or access token
	OnUpdate          func(finesse.Update)
	OnServicePresence func(available bool)
}

// DialFunc opens a Notifier. Errors wrap ErrUpstreamAuth when the
// Notification Service refused the credential.
type DialFunc func(ctx context.Context, req DialRequest) (Notifier, error)

// Finesse is the REST view a Session needs (the server adapts *rest.Client).
type Finesse interface {
	// SystemInfo asks the named side.
	SystemInfo(ctx context.Context, side string) (*finesse.SystemInfo, error)
	User(ctx context.Context, id string) (*finesse.User, error)
	Dialogs(ctx context.Context, loginID string) ([]finesse.Dialog, error)
	Team(ctx context.Context, teamID string) (*finesse.Team, error)
	Queue(ctx context.Context, queueID string) (*finesse.Queue, error)
	UserQueues(ctx context.Context, loginID string) ([]finesse.Queue, error)
	// MediaList and MRDDialogs read the nonvoice state (UCCE; an error
	// means the deployment has none).
	MediaList(ctx context.Context, loginID string) ([]finesse.Media, error)
	MRDDialogs(ctx context.Context, loginID, mrdID string) ([]finesse.Dialog, error)
}

// Publisher is the browser-facing stream of one Session (satisfied by
// *gadget.Stream). Values passed as data or state are never modified after
// the call.
type Publisher interface {
	SetIdentity(loginID string, roles []string)
	SetAllowedNodes(nodes []string)
	// EventAt relays one notification that reached the relay at arrived
	// (Update.Received; zero when unknown).
	EventAt(arrived time.Time, node, event, source, requestID string, data any, state any)
	// ReconciledEvent publishes an event derived from a snapshot for a
	// requestId whose notification never arrived (see Session.NoteRequest):
	// event PUT on node, data = the node's state, marked "reconciled".
	ReconciledEvent(node, requestID string, data any)
	State(node string, data any)
	Status(upstream, side, host string)
	End(reason string)
	Subscribers() int
	// Continued reports whether the stream goes on from one an earlier
	// Session published (another instance's, which died or stopped): the
	// browsers were told "up" before, so the Session's first status is
	// reconnecting, not connecting.
	Continued() bool
}

// Errors that steer a Session.
var (
	// ErrSignInAgain: the credential is gone for good (IdS refused the
	// refresh, or Finesse refused the token); the agent must sign in again.
	// It is cred.ErrSignInAgain, so a credential source can return it.
	ErrSignInAgain = cred.ErrSignInAgain
	// ErrUpstreamAuth: the Notification Service refused the credential.
	ErrUpstreamAuth = errors.New("agent: notification service refused the credential")
	// ErrUpstreamConflict: another session bound our resource.
	ErrUpstreamConflict = errors.New("agent: notification session replaced by another login with the same resource")
	// ErrOutOfService: the Finesse side answered 503 or reports OUT_OF_SERVICE.
	ErrOutOfService = errors.New("agent: finesse side out of service")
	// ErrManagerStopped: the Manager is not running.
	ErrManagerStopped = errors.New("agent: manager not running")
)

// Upstream states reported to browsers in status messages.
const (
	StatusConnecting   = "connecting"
	StatusUp           = "up"
	StatusReconnecting = "reconnecting"
	StatusFailover     = "failover"
	StatusOutOfService = "out_of_service"
	StatusSignedOut    = "signed_out"
)

// End reasons passed to Publisher.End.
const (
	EndSignedOut      = "signed_out"
	EndSessionExpired = "session_expired"
	EndShutdown       = "shutdown"
	// EndIdle: the grace period after the last browser ran out. Browsers
	// see it as "shutdown" (close 4102); OnEnd tells it apart from the
	// relay's own shutdown, after which the session is re-opened on start.
	EndIdle = "idle"
)
