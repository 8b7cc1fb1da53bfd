// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without cgo or libsystemd: one datagram per state change,
// sent to the unix socket named by NOTIFY_SOCKET.
//
// A unit with Type=notify is "started" when the service sends READY=1; with
// WatchdogSec= set, systemd restarts the service unless it sends WATCHDOG=1
// at least once per WATCHDOG_USEC. Outside systemd (NOTIFY_SOCKET unset)
// every method is a no-op, so callers need not know how they were started.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends notifications to the service manager. The zero value and a
// nil *Notifier are valid and send nothing. A Notifier is safe for
// concurrent use (each message is its own datagram on its own socket).
type Notifier struct {
	socket   string        // NOTIFY_SOCKET; "" = not under systemd
	watchdog time.Duration // WATCHDOG_USEC when it is meant for this process; 0 = off
}

// FromEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through getenv
// (os.Getenv in production). pid is this process's id (os.Getpid()); a
// WATCHDOG_PID naming another process turns the watchdog off, as
// sd_watchdog_enabled(3) does. A malformed WATCHDOG_USEC is an error that
// names the variable.
func FromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	n := &Notifier{socket: getenv("NOTIFY_SOCKET")}
	if n.socket == "" {
		return n, nil
	}
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET=%q is neither an absolute path nor an abstract socket (@name)", n.socket)
	}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return n, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return n, nil // the watchdog is another process's
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return nil, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive number of microseconds (check WatchdogSec= in the unit)", usec)
	}
	n.watchdog = time.Duration(u) * time.Microsecond
	return n, nil
}

// Enabled reports whether a service manager listens (NOTIFY_SOCKET is set).
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// WatchdogInterval is how often RunWatchdog pings: half of WATCHDOG_USEC, as
// sd_watchdog_enabled(3) recommends; 0 when the watchdog is off.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 2
}

// Notify sends one message of newline-separated VAR=value assignments.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	if strings.ContainsRune(state, 0) {
		return errors.New("sdnotify: a notification cannot contain a NUL byte")
	}
	// Go maps a leading '@' to the Linux abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: connect to NOTIFY_SOCKET %s: %w", n.socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send %q to NOTIFY_SOCKET %s: %w", firstLine(state), n.socket, err)
	}
	return nil
}

// Ready tells the manager that start-up is finished (READY=1), with a status
// line for systemctl status.
func (n *Notifier) Ready(status string) error {
	return n.Notify("READY=1\nSTATUS=" + oneLine(status) + "\nMAINPID=" + strconv.Itoa(os.Getpid()))
}

// Stopping tells the manager that a graceful shutdown began (STOPPING=1).
func (n *Notifier) Stopping(status string) error {
	return n.Notify("STOPPING=1\nSTATUS=" + oneLine(status))
}

// Status updates the free-form status line (STATUS=).
func (n *Notifier) Status(status string) error {
	return n.Notify("STATUS=" + oneLine(status))
}

// RunWatchdog sends WATCHDOG=1 every WatchdogInterval while healthy()
// reports true, and skips the ping otherwise (so systemd restarts a relay
// that stays unhealthy for WatchdogSec). It blocks until ctx ends and
// returns nil then; with the watchdog off it just waits for ctx. Send
// errors are passed to onErr (may be nil) and do not stop the loop.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() bool, onErr func(error)) error {
	every := n.WatchdogInterval()
	if every <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if healthy != nil && !healthy() {
				continue
			}
			if err := n.Notify("WATCHDOG=1"); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
