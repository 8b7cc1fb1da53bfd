// Command finesse-relay signs Cisco Finesse agents in with SSO, holds their
// Finesse Notification Service sessions server-side and relays every event to
// their browsers over one WebSocket. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"finesse-relay/server/winsvc"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && isHelpFlag(args[0]) {
		usage(stdout) // "finesse-relay --help": the commands, not serve's flags
		return exitOK
	}
	if cmd != "help" && helpRequested(args) {
		// "<command> -h": the command's flags on stdout, exit 0 (the flag
		// package reports -h as an error, which would exit 2).
		h := []string{"-h"}
		switch cmd {
		case "serve":
			cmdServe(ctx, h, stdout, stdout, getenv)
		case "demo":
			cmdDemo(ctx, h, stdout, stdout)
		case "check":
			cmdCheck(ctx, h, stdout, stdout, getenv)
		case "bench":
			cmdBench(ctx, h, stdout, stdout)
		}
		switch cmd {
		case "serve", "demo", "check", "bench":
			return exitOK
		}
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, args, stdout, stderr, getenv)
	case "demo":
		return cmdDemo(ctx, args, stdout, stderr)
	case "check":
		return cmdCheck(ctx, args, stdout, stderr, getenv)
	case "sim":
		return cmdSim(ctx, args, stdout, stderr)
	case "bench":
		return cmdBench(ctx, args, stdout, stderr)
	case "service":
		return winsvc.Main(ctx, args, stdout, stderr, winsvc.Env{Getenv: getenv, Getwd: os.Getwd},
			func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				return cmdServe(ctx, args, stdout, stderr, getenv)
			})
	case "version":
		fmt.Fprintln(stdout, "finesse-relay", buildVersion())
		return exitOK
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "finesse-relay: unknown command %q\n", cmd)
		usage(stderr)
		return exitConfig
	}
}

// isHelpFlag reports -h, -help or --help.
func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// helpRequested reports a help flag among a command's flags (before "--").
func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: finesse-relay [command] [flags]

commands:
  serve    run the relay (default)
  demo     run the relay with the embedded Finesse/IdS simulator on loopback
  check    check the configuration and reach IdS and both Finesse sides
  sim      run the Finesse/IdS simulator alone and write a relay.env for serve
  bench    run the simulator and the relay as processes and measure the relay
  service  install|uninstall|start|stop|status the Windows service
  version  print the version

Run "finesse-relay <command> -h" for the command's flags.
`)
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// setFlag collects repeated --set KEY=VALUE flags.
type setFlag map[string]string

func (s setFlag) String() string { return "" }

func (s setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	s[k] = val
	return nil
}

// configFlags are the flags every configuration-reading command shares.
type configFlags struct {
	file     string
	set      setFlag
	listen   string
	logLevel string
}

func (c *configFlags) register(fs *flag.FlagSet) {
	c.set = setFlag{}
	fs.StringVar(&c.file, "config", "", "env file to read (default relay.env when present)")
	fs.Var(c.set, "set", "override one key, KEY=VALUE (repeatable)")
	fs.StringVar(&c.listen, "listen", "", "listen address host:port (sets LISTEN_HOST and server.port)")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error (sets LOG_LEVEL)")
}

func (c *configFlags) load(getenv func(string) string, defaults map[string]string) (*Config, error) {
	set := setFlag{}
	for k, v := range c.set {
		set[k] = v
	}
	if c.listen != "" {
		host, port, err := net.SplitHostPort(c.listen)
		if err != nil {
			return nil, cfgErr("--listen", "%q is not host:port (e.g. 127.0.0.1:1125 or :1125)", c.listen)
		}
		if _, err := strconv.Atoi(port); err != nil {
			return nil, cfgErr("--listen", "%q has no numeric port", c.listen)
		}
		set["LISTEN_HOST"], set["server.port"] = host, port
	}
	if c.logLevel != "" {
		set["LOG_LEVEL"] = c.logLevel
	}
	return LoadConfig(LoadOptions{File: c.file, FileRequired: c.file != "", Getenv: getenv, Set: set, Defaults: defaults})
}

// parseConfig parses a configuration-reading command's flags and loads the
// configuration; on failure it has reported the problem and returns the exit
// status.
func parseConfig(name string, args []string, stderr io.Writer, getenv func(string) string) (*Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, exitConfig
	}
	cfg, err := cf.load(getenv, nil)
	if err != nil {
		return nil, reportConfigError(stderr, err)
	}
	return cfg, exitOK
}

// reportConfigError prints a configuration problem on one line.
func reportConfigError(stderr io.Writer, err error) int {
	var ce *ConfigError
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "finesse-relay:", ce.Error())
		return exitConfig
	}
	fmt.Fprintln(stderr, "finesse-relay:", err)
	return exitFail
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, code := parseConfig("serve", args, stderr, getenv)
	if cfg == nil {
		return code
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return reportConfigError(stderr, cfgErr("LOG_LEVEL", "%v", err))
	}
	defer func() { _ = log.Sync() }()
	if cfg.Store == "" {
		cfg.Store = "file:" + filepath.Join(stateDirectory(getenv), defaultStoreFile)
	}
	logNoFileLimit(log, raiseNoFileLimit(fdsWanted))
	if len(cfg.Sides) == 0 {
		log.Warn("no Finesse configured (FINESSE_A_HOST is empty): agents cannot sign in and no event will flow; set FINESSE_A_HOST (and FINESSE_B_HOST), or try `finesse-relay demo`")
	}
	app, err := NewApp(cfg, log)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	if err := runSupervised(ctx, cfg, app, log, getenv); err != nil {
		log.Error("relay stopped", zap.Error(err))
		return exitFail
	}
	return exitOK
}
