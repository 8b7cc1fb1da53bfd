package winsvc

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// runner is one run of the relay inside the service: serve in a goroutine it
// owns, with a context that Stop cancels (the graceful shutdown), and the
// life cycle reported to the log file and the event log.
type runner struct {
	o      Options
	log    io.Writer
	events EventSink
	cancel context.CancelFunc
	done   chan int
	once   sync.Once
	code   int
}

// startRunner starts serve with o's configuration. serve's output goes to
// log; its warnings and errors also go to events.
func startRunner(ctx context.Context, o Options, serve ServeFunc, log io.Writer, events EventSink) *runner {
	ctx, cancel := context.WithCancel(ctx)
	r := &runner{o: o, log: log, events: events, cancel: cancel, done: make(chan int, 1)}
	r.lifecycle(false, "service %s starting: serve --config %s (log %s)", o.Name, o.ConfigPath, o.LogPath)
	stderr := io.MultiWriter(log, NewEventWriter(events))
	go func() { r.done <- serve(ctx, o.ServeArgs(), log, stderr) }()
	return r
}

// Done yields serve's exit status if it ends on its own (a failure: it only
// ends cleanly when stopped).
func (r *runner) Done() <-chan int { return r.done }

// Exited records that serve ended on its own with code and returns the
// service exit code (never 0: a relay that stops unasked is a failure, so
// the SCM's recovery actions restart it).
func (r *runner) Exited(code int) int {
	r.cancel()
	if code == 0 {
		code = 1
	}
	r.lifecycle(true, "service %s: the relay stopped on its own (exit status %d); see %s. Windows restarts it (recovery actions)", r.o.Name, code, r.o.LogPath)
	return code
}

// Stop cancels serve's context (SIGTERM's equivalent), waits for the
// graceful shutdown to finish and returns serve's exit status.
func (r *runner) Stop(reason string) int {
	r.once.Do(func() {
		start := time.Now()
		r.lifecycle(false, "service %s stopping (%s)", r.o.Name, reason)
		r.cancel()
		r.code = <-r.done
		r.lifecycle(r.code != 0, "service %s stopped in %v (exit status %d)", r.o.Name, time.Since(start).Round(time.Millisecond), r.code)
	})
	return r.code
}

// lifecycle writes one service event to the event log and the log file.
func (r *runner) lifecycle(failed bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if failed {
		_ = r.events.Error(EventLifecycle, msg)
	} else {
		_ = r.events.Info(EventLifecycle, msg)
	}
	level := "info"
	if failed {
		level = "error"
	}
	fmt.Fprintf(r.log, "{\"level\":%q,\"ts\":%q,\"logger\":\"service\",\"msg\":%q}\n", level, time.Now().UTC().Format(time.RFC3339Nano), msg)
}
