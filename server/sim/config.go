package sim

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// MaxAgents is the largest Config.Agents accepted.
const MaxAgents = 10000

// Config configures a simulator. The zero value is a usable demo setup:
// 20 agents, password "demo", real-life timings, robots off.
type Config struct {
	// Host is the address every listener binds, on port 0. Default
	// "127.0.0.1".
	Host string

	// Agents is the number of agents, 1001 upward, all in team 10
	// "Support". Default 20, at most MaxAgents. Login id 2001 belongs to
	// the supervisor, so an agent range that would include it skips it
	// (with 2000 agents: 1001-2000 and 2002-3001).
	Agents int

	// Password is the non-SSO password of every user and the password on
	// the simulated IdS sign-in page. Default "demo".
	Password string

	// Seed makes the call generator and the robots deterministic: the
	// same seed gives the same sequence of generated calls.
	Seed int64

	// Fast selects test timings: robots answer after 200 ms, talk 1-2 s
	// and wrap up in 1 s, queue statistics every 500 ms, forced logout
	// after 1 s, Basic-auth lockout 5 s, calls every 1 s.
	Fast bool

	// Robots makes every agent except 1001 (and the supervisor) a robot:
	// it signs in, goes READY, answers, talks, wraps up and sometimes
	// takes a break. A robot lets go of its agent for good as soon as a
	// real XMPP session, or a REST write with the agent's own
	// credentials, appears for that agent.
	Robots bool
	// PlainIdS serves the simulated IdS over plain HTTP (loopback only), so
	// that a browser reaches its sign-in page without a certificate warning
	// for the simulator's private CA. REST and XMPP stay on TLS.
	PlainIdS bool

	// CallInterval is the mean gap between generated inbound calls
	// (exponentially distributed). Zero means the default: 6 s (Fast:
	// 1 s) when Robots is set, no generator otherwise (then calls come
	// only from PlaceCall and the control API). Negative disables the
	// generator.
	CallInterval time.Duration

	// RONATimeout is the ring-no-answer time of routed (ACD) calls: an
	// offered call still ringing after it goes back to the head of its
	// queue and the agent becomes NOT_READY with the RONA reason code
	// (UCCE's 32767), as CUCM/CCE do. Zero means 15 s; negative disables
	// RONA (the call rings until the caller abandons).
	RONATimeout time.Duration

	// ForcedLogoutDelay is how long a signed-in user may have no available
	// XMPP session on either side before Finesse logs them out with
	// reason code 255. Default 60 s (Fast: 1 s).
	ForcedLogoutDelay time.Duration

	// ClientID, ClientSecret and RedirectURIs register the relay as a
	// client of the simulated IdS. Without a ClientID no client is
	// registered (tokens can still be had from IdS().IssueForTest).
	ClientID, ClientSecret string
	RedirectURIs           []string

	// AccessTokenLifetime and RefreshTokenLifetime are the IdS token
	// lifetimes; zero leaves the IdS defaults (300 s and 7,200 s).
	AccessTokenLifetime, RefreshTokenLifetime time.Duration

	// Logger receives the simulator's logs; nil means zap.NewNop().
	Logger *zap.Logger
}

// timings are the scenario's durations, derived from Config.
type timings struct {
	ring            time.Duration // robots answer after this; outside numbers answer after this
	talkMin         time.Duration // robot talk time range
	talkMax         time.Duration
	robotWrap       time.Duration // robots end wrap-up after this (± 50 %)
	wrapUpTimer     time.Duration // the wrap-up timer of every user: WORK→NOT_READY, WORK_READY→READY
	breakMin        time.Duration // robot NOT_READY time range
	breakMax        time.Duration
	loginSpread     time.Duration // robots sign in within this after Run starts
	queueStats      time.Duration // Queue/{id} notification period
	forcedLogout    time.Duration
	rona            time.Duration // <= 0: no ring-no-answer
	lockout         time.Duration // Basic-auth lockout after 5 failures
	callInterval    time.Duration // <= 0: no generator
	abandon         time.Duration // a queued call hangs up after this
	cti             time.Duration // delay between a 202 and the change (CTI round trip)
	xmppDropGrace   time.Duration // OUT_OF_SERVICE: delay between the SystemInfo event and the XMPP drop
	lockoutFailures int
}

func (c *Config) timings() timings {
	t := timings{
		ring:            4 * time.Second,
		talkMin:         20 * time.Second,
		talkMax:         120 * time.Second,
		robotWrap:       8 * time.Second,
		wrapUpTimer:     60 * time.Second,
		breakMin:        10 * time.Second,
		breakMax:        60 * time.Second,
		loginSpread:     3 * time.Second,
		queueStats:      10 * time.Second,
		forcedLogout:    60 * time.Second,
		rona:            defaultRONA,
		lockout:         5 * time.Minute,
		callInterval:    6 * time.Second,
		abandon:         3 * time.Minute,
		cti:             10 * time.Millisecond,
		xmppDropGrace:   250 * time.Millisecond,
		lockoutFailures: 5,
	}
	if c.Fast {
		t.ring = 200 * time.Millisecond
		t.talkMin, t.talkMax = time.Second, 2*time.Second
		t.robotWrap = time.Second
		t.wrapUpTimer = 10 * time.Second
		t.breakMin, t.breakMax = 500*time.Millisecond, 1500*time.Millisecond
		t.loginSpread = 300 * time.Millisecond
		t.queueStats = 500 * time.Millisecond
		t.forcedLogout = time.Second
		t.lockout = 5 * time.Second
		t.callInterval = time.Second
		t.abandon = 20 * time.Second
	}
	switch {
	case c.CallInterval < 0:
		t.callInterval = 0
	case c.CallInterval > 0:
		t.callInterval = c.CallInterval
	case !c.Robots:
		t.callInterval = 0
	}
	if c.ForcedLogoutDelay > 0 {
		t.forcedLogout = c.ForcedLogoutDelay
	}
	if c.RONATimeout != 0 {
		t.rona = c.RONATimeout
	}
	return t
}

// withDefaults returns c with defaults filled in, or an error naming the
// invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	switch {
	case c.Agents == 0:
		c.Agents = 20
	case c.Agents < 0 || c.Agents > MaxAgents:
		return c, fmt.Errorf("sim: Config.Agents %d out of range 1..%d", c.Agents, MaxAgents)
	}
	if c.Password == "" {
		c.Password = "demo"
	}
	if c.ForcedLogoutDelay < 0 {
		return c, fmt.Errorf("sim: Config.ForcedLogoutDelay %v is negative", c.ForcedLogoutDelay)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}
