//go:build unix

package main

import (
	"fmt"
	"syscall"

	"go.uber.org/zap"
)

// File descriptors the relay needs: two per agent session (the browser
// WebSocket and the upstream XMPP connection) plus a reserve for the
// listeners, the REST connection pools and files.
const (
	fdsPerSession   = 2
	fdReserve       = 1024
	plannedSessions = 10000 // what one instance is sized and benchmarked for
)

// fdsWanted is the RLIMIT_NOFILE soft limit that plannedSessions need.
const fdsWanted = plannedSessions*fdsPerSession + fdReserve

// noFileLimit is the process's RLIMIT_NOFILE after raiseNoFileLimit.
type noFileLimit struct {
	Soft, Hard uint64
	Raised     bool  // the soft (and perhaps hard) limit was raised
	Err        error // why it could not be raised as far as wanted
}

// sessions is how many agent sessions the soft limit leaves room for.
func (l noFileLimit) sessions() uint64 {
	if l.Soft <= fdReserve {
		return 0
	}
	return (l.Soft - fdReserve) / fdsPerSession
}

// raiseNoFileLimit raises the soft RLIMIT_NOFILE to the hard limit, and the
// hard limit to want when the process may (root, CAP_SYS_RESOURCE). The Go
// runtime already lifts the soft limit to the hard one at start; this adds
// the hard limit and reports what the process ends up with.
func raiseNoFileLimit(want uint64) noFileLimit {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return noFileLimit{Err: fmt.Errorf("getrlimit RLIMIT_NOFILE: %w", err)}
	}
	l := noFileLimit{Soft: r.Cur, Hard: r.Max}
	target := syscall.Rlimit{Cur: max(r.Cur, r.Max), Max: r.Max}
	if target.Max < want {
		target.Cur, target.Max = want, want
	}
	if target == r {
		return l
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &target); err != nil {
		// Not allowed to raise the hard limit: at least the soft one.
		l.Err = fmt.Errorf("setrlimit RLIMIT_NOFILE to %d: %w", target.Max, err)
		target = syscall.Rlimit{Cur: r.Max, Max: r.Max}
		if target == r || syscall.Setrlimit(syscall.RLIMIT_NOFILE, &target) != nil {
			return l
		}
	}
	l.Soft, l.Hard, l.Raised = target.Cur, target.Max, true
	return l
}

// currentNoFileLimit reads RLIMIT_NOFILE without changing it.
func currentNoFileLimit() noFileLimit {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return noFileLimit{Err: fmt.Errorf("getrlimit RLIMIT_NOFILE: %w", err)}
	}
	return noFileLimit{Soft: r.Cur, Hard: r.Max}
}

// logNoFileLimit says at start how many sessions the descriptor limit
// allows, and warns when it is below plannedSessions.
func logNoFileLimit(log *zap.Logger, l noFileLimit) {
	fields := []zap.Field{zap.Uint64("soft", l.Soft), zap.Uint64("hard", l.Hard), zap.Uint64("sessions", l.sessions())}
	if l.Err != nil {
		fields = append(fields, zap.Error(l.Err))
	}
	if l.sessions() < plannedSessions {
		log.Warn("RLIMIT_NOFILE is too low for 10,000 sessions (2 file descriptors each); raise LimitNOFILE in the service unit or ulimit -n", fields...)
		return
	}
	log.Debug("file descriptor limit", fields...)
}
