// Package winsvc runs the relay as a native Windows service: the
// "finesse-relay service install|uninstall|start|stop|status" commands (the
// Service Control Manager through golang.org/x/sys/windows/svc/mgr) and the
// "service run" entry point the SCM starts, which serves until the service is
// stopped or the machine shuts down, logging to a file and, for warnings,
// errors and the service's own life cycle, to the Windows event log.
//
// Argument handling, path resolution, the log file and the event-log level
// mapping are platform-neutral and tested everywhere; the SCM calls live in
// the _windows.go files and are cross-compiled and vetted in CI.
package winsvc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// DefaultName is the service name (and event-log source) unless --name says otherwise.
const DefaultName = "finesse-relay"

// Action is one "service" sub-command.
type Action string

// The sub-commands. Run is what the SCM starts; operators use the others.
const (
	Install   Action = "install"
	Uninstall Action = "uninstall"
	Start     Action = "start"
	Stop      Action = "stop"
	Status    Action = "status"
	Run       Action = "run"
)

// StartType is when Windows starts an installed service.
type StartType string

// The start types "service install --start" accepts.
const (
	StartAuto    StartType = "auto"    // at boot
	StartDelayed StartType = "delayed" // at boot, after the other automatic services (the default: the network is up)
	StartManual  StartType = "manual"  // only when started by hand
)

// Options is one parsed "service" command line.
type Options struct {
	Action      Action
	Name        string    // service name and event-log source
	DisplayName string    // name shown in services.msc
	ConfigPath  string    // absolute path of the env file the service serves with
	LogPath     string    // absolute path of the service's log file
	StartType   StartType // install only
}

// Env is what Parse needs from the process: environment lookup (for
// %ProgramData%) and the working directory (to make relative paths absolute,
// since a service runs in %SystemRoot%\System32).
type Env struct {
	Getenv func(string) string
	Getwd  func() (string, error)
}

// Usage describes the "service" command.
const Usage = `usage: finesse-relay service <install|uninstall|start|stop|status> [flags]

  install    register the relay as a Windows service (starts at boot, restarts on failure)
  uninstall  stop and remove the service and its event-log source
  start      start the service
  stop       stop the service (graceful: in-flight requests finish)
  status     print the service state

flags:
  --name NAME        service name and event-log source (default finesse-relay)
  --config FILE      env file the service reads (default %ProgramData%\finesse-relay\relay.env)
  --log-file FILE    the service's log file (default %ProgramData%\finesse-relay\finesse-relay.log)
  --start TYPE       install only: delayed (default), auto or manual
`

// ErrUsage marks a command-line mistake (exit status 2).
var ErrUsage = errors.New("winsvc: usage")

// Parse reads the arguments after "service".
func Parse(args []string, env Env) (Options, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return Options{}, fmt.Errorf("%w: name a sub-command (install, uninstall, start, stop or status)", ErrUsage)
	}
	o := Options{Action: Action(args[0]), Name: DefaultName}
	switch o.Action {
	case Install, Uninstall, Start, Stop, Status, Run:
	default:
		return Options{}, fmt.Errorf("%w: unknown sub-command %q (install, uninstall, start, stop or status)", ErrUsage, args[0])
	}
	fs := flag.NewFlagSet("service "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Name, "name", DefaultName, "")
	config := fs.String("config", "", "")
	logFile := fs.String("log-file", "", "")
	start := fs.String("start", string(StartDelayed), "")
	if err := fs.Parse(args[1:]); err != nil {
		return Options{}, fmt.Errorf("%w: service %s: %v", ErrUsage, args[0], err)
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("%w: service %s: unexpected argument %q", ErrUsage, args[0], fs.Arg(0))
	}
	if err := checkName(o.Name); err != nil {
		return Options{}, err
	}
	o.StartType = StartType(*start)
	switch o.StartType {
	case StartAuto, StartDelayed, StartManual:
	default:
		return Options{}, fmt.Errorf("%w: --start %q: want delayed, auto or manual", ErrUsage, *start)
	}
	if o.Action != Install && *start != string(StartDelayed) {
		return Options{}, fmt.Errorf("%w: --start only applies to service install", ErrUsage)
	}
	o.DisplayName = "Finesse Relay"
	if o.Name != DefaultName {
		o.DisplayName += " (" + o.Name + ")"
	}
	dir := DefaultDir(env.Getenv)
	var err error
	if o.ConfigPath, err = resolve(*config, WinJoin(dir, "relay.env"), env.Getwd); err != nil {
		return Options{}, fmt.Errorf("--config: %w", err)
	}
	if o.LogPath, err = resolve(*logFile, WinJoin(dir, o.Name+".log"), env.Getwd); err != nil {
		return Options{}, fmt.Errorf("--log-file: %w", err)
	}
	return o, nil
}

// RunArgs are the arguments the SCM passes to the binary: it runs
// "finesse-relay service run" with this installation's name and paths.
func (o Options) RunArgs() []string {
	return []string{"service", string(Run), "--name", o.Name, "--config", o.ConfigPath, "--log-file", o.LogPath}
}

// ServeArgs are the "serve" arguments the service runs the relay with.
func (o Options) ServeArgs() []string { return []string{"--config", o.ConfigPath} }

// checkName refuses names the SCM or the event log would reject or mangle.
func checkName(n string) error {
	if n == "" || len(n) > 256 {
		return fmt.Errorf("%w: --name must be 1 to 256 characters", ErrUsage)
	}
	if strings.ContainsAny(n, `/\"`) || strings.TrimSpace(n) != n {
		return fmt.Errorf("%w: --name %q: no slashes, backslashes, quotes or surrounding spaces", ErrUsage, n)
	}
	return nil
}

// ServeFunc runs the relay's serve command until ctx ends and returns its
// exit status (package main's cmdServe).
type ServeFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Main runs "finesse-relay service ..." and returns the exit status:
// 0 done, 1 failed, 2 usage error or not Windows.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, env Env, serve ServeFunc) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		_, _ = io.WriteString(stdout, Usage)
		return 0
	}
	o, err := Parse(args, env)
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay:", strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
		_, _ = io.WriteString(stderr, Usage)
		return 2
	}
	if err := execute(ctx, o, stdout, stderr, serve); err != nil {
		fmt.Fprintln(stderr, "finesse-relay:", err)
		if errors.Is(err, errNotWindows) {
			return 2
		}
		return 1
	}
	return 0
}

var errNotWindows = errors.New("service: Windows services exist only on Windows; on Linux install the .deb/.rpm or configs/systemd/finesse-relay.service (README: Install on Linux)")
