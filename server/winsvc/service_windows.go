//go:build windows

package winsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// maxLogSize is the size at which the service's log is moved aside (to .1,
// replacing an older one) when the service starts.
const maxLogSize = 64 << 20

// stopWait bounds how long "service stop" and "uninstall" wait for the
// relay's graceful shutdown (SHUTDOWN_TIMEOUT is 15 s by default).
const stopWait = 45 * time.Second

func execute(ctx context.Context, o Options, stdout, _ io.Writer, serve ServeFunc) error {
	switch o.Action {
	case Run:
		return runService(o, serve)
	case Install:
		return install(o, stdout)
	case Uninstall:
		return uninstall(o, stdout)
	case Start:
		return withService(o, func(s *mgr.Service) error {
			if err := s.Start(); err != nil {
				return fmt.Errorf("service %s: start: %w (see the event log and %s)", o.Name, err, o.LogPath)
			}
			st, err := waitState(ctx, s, svc.Running, stopWait)
			fmt.Fprintf(stdout, "%s: %s\n", o.Name, stateName(st.State))
			return err
		})
	case Stop:
		return withService(o, func(s *mgr.Service) error { return stop(ctx, o, s, stdout) })
	case Status:
		return withService(o, func(s *mgr.Service) error {
			st, err := s.Query()
			if err != nil {
				return fmt.Errorf("service %s: query: %w", o.Name, err)
			}
			fmt.Fprintf(stdout, "%s: %s (pid %d)\n", o.Name, stateName(st.State), st.ProcessId)
			return nil
		})
	}
	return fmt.Errorf("service: unknown action %q", o.Action)
}

// runService is what the SCM starts ("service run").
func runService(o Options, serve ServeFunc) error {
	isSvc, err := svc.IsWindowsService()
	if err != nil {
		return fmt.Errorf("service run: %w", err)
	}
	if !isSvc {
		return errors.New("service run is started by the Windows Service Control Manager; use \"finesse-relay serve\" in a console, or \"finesse-relay service start\"")
	}
	// A service starts in System32: run in the config file's directory so that
	// relative paths in relay.env (certificates, the default file store)
	// resolve next to it.
	if err := os.Chdir(filepath.Dir(o.ConfigPath)); err != nil {
		return fmt.Errorf("service run: change to the config directory: %w", err)
	}
	elog, err := eventlog.Open(o.Name)
	if err != nil {
		return fmt.Errorf("service %s: open the event log source (reinstall the service): %w", o.Name, err)
	}
	defer elog.Close()
	logf, err := OpenLog(o.LogPath, maxLogSize)
	if err != nil {
		_ = elog.Error(EventLifecycle, err.Error())
		return err
	}
	defer logf.Close()
	if err := svc.Run(o.Name, &handler{o: o, serve: serve, log: logf, events: elog}); err != nil {
		_ = elog.Error(EventLifecycle, fmt.Sprintf("service %s failed: %v", o.Name, err))
		return fmt.Errorf("service %s: %w", o.Name, err)
	}
	return nil
}

// handler answers the SCM: Stop and Shutdown cancel serve's context and
// report StopPending until the graceful shutdown is over.
type handler struct {
	o      Options
	serve  ServeFunc
	log    io.Writer
	events EventSink
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	r := startRunner(context.Background(), h.o, h.serve, h.log, h.events)
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case code := <-r.Done():
			return true, uint32(r.Exited(code)) // #nosec G115 -- exit statuses are 0..255
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWait / time.Millisecond)}
				reason := "service stop"
				if c.Cmd == svc.Shutdown {
					reason = "system shutdown"
				}
				if code := r.Stop(reason); code != 0 {
					return true, uint32(code) // #nosec G115 -- exit statuses are 0..255
				}
				return false, 0
			}
		}
	}
}

func install(o Options, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("service install: find this program's path: %w", err)
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service install: connect to the Service Control Manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(o.Name); err == nil {
		s.Close()
		return fmt.Errorf("service %s is already installed (uninstall it first, or pick another --name)", o.Name)
	}
	if err := os.MkdirAll(DefaultDir(os.Getenv), 0o750); err != nil {
		return fmt.Errorf("service install: create %s: %w", DefaultDir(os.Getenv), err)
	}
	if _, err := os.Stat(o.ConfigPath); err != nil {
		fmt.Fprintf(stdout, "note: %s does not exist yet: copy configs\\relay.env.example there and edit it before starting the service\n", o.ConfigPath)
	}
	cfg := mgr.Config{
		DisplayName:  o.DisplayName,
		Description:  "Cisco Finesse SSO and Notification Service relay for gadgets and browser tabs (config " + o.ConfigPath + ")",
		StartType:    mgr.StartAutomatic,
		ErrorControl: mgr.ErrorNormal,
	}
	switch o.StartType {
	case StartManual:
		cfg.StartType = mgr.StartManual
	case StartDelayed:
		cfg.DelayedAutoStart = true
	}
	s, err := m.CreateService(o.Name, exe, cfg, o.RunArgs()...)
	if err != nil {
		return fmt.Errorf("service install: create %s: %w", o.Name, err)
	}
	defer s.Close()
	// Recovery: restart after 5 s, then 30 s, then every 2 min; the failure
	// count resets after a day without failure.
	actions := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 2 * time.Minute},
	}
	if err := s.SetRecoveryActions(actions, uint32((24 * time.Hour).Seconds())); err != nil {
		_ = s.Delete()
		return fmt.Errorf("service install: set the recovery actions: %w", err)
	}
	// A non-zero exit (the relay failed) counts as a failure, not only a crash.
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		_ = s.Delete()
		return fmt.Errorf("service install: recovery on non-crash failures: %w", err)
	}
	if err := eventlog.InstallAsEventCreate(o.Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		_ = s.Delete()
		return fmt.Errorf("service install: register the event-log source %s: %w", o.Name, err)
	}
	fmt.Fprintf(stdout, "installed service %s (%s start, restarts on failure)\n  config %s\n  log    %s\nstart it with: finesse-relay service start\n", o.Name, o.StartType, o.ConfigPath, o.LogPath)
	return nil
}

func uninstall(o Options, stdout io.Writer) error {
	return withService(o, func(s *mgr.Service) error {
		if st, err := s.Query(); err == nil && st.State != svc.Stopped {
			if err := stop(context.Background(), o, s, stdout); err != nil {
				return err
			}
		}
		if err := s.Delete(); err != nil {
			return fmt.Errorf("service %s: delete: %w", o.Name, err)
		}
		if err := eventlog.Remove(o.Name); err != nil {
			fmt.Fprintf(stdout, "note: event-log source %s: %v\n", o.Name, err)
		}
		fmt.Fprintf(stdout, "removed service %s (config and log files are kept)\n", o.Name)
		return nil
	})
}

func stop(ctx context.Context, o Options, s *mgr.Service, stdout io.Writer) error {
	if _, err := s.Control(svc.Stop); err != nil {
		if errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			fmt.Fprintf(stdout, "%s: already stopped\n", o.Name)
			return nil
		}
		return fmt.Errorf("service %s: stop: %w", o.Name, err)
	}
	st, err := waitState(ctx, s, svc.Stopped, stopWait)
	fmt.Fprintf(stdout, "%s: %s\n", o.Name, stateName(st.State))
	return err
}

func withService(o Options, f func(*mgr.Service) error) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service %s: connect to the Service Control Manager (run as Administrator): %w", o.Name, err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(o.Name)
	if err != nil {
		return fmt.Errorf("service %s is not installed (finesse-relay service install): %w", o.Name, err)
	}
	defer s.Close()
	return f(s)
}

func waitState(ctx context.Context, s *mgr.Service, want svc.State, limit time.Duration) (svc.Status, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := s.Query()
		if err != nil {
			return st, fmt.Errorf("query the service: %w", err)
		}
		if st.State == want {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("still %s after %v (see the event log)", stateName(st.State), limit)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	case svc.ContinuePending:
		return "continuing"
	case svc.PausePending:
		return "pausing"
	case svc.Paused:
		return "paused"
	}
	return fmt.Sprintf("state %d", s)
}
