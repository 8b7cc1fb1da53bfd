package winsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testEnv(programData, wd string) Env {
	return Env{
		Getenv: func(k string) string {
			if k == "ProgramData" {
				return programData
			}
			return ""
		},
		Getwd: func() (string, error) { return wd, nil },
	}
}

func TestParse(t *testing.T) {
	env := testEnv(`D:\PD`, `C:\Users\ops\relay`)
	for _, tc := range []struct {
		name    string
		args    []string
		env     Env
		want    Options
		wantErr string
	}{
		{"install defaults", []string{"install"}, env, Options{Action: Install, Name: "finesse-relay", DisplayName: "Finesse Relay",
			ConfigPath: `D:\PD\finesse-relay\relay.env`, LogPath: `D:\PD\finesse-relay\finesse-relay.log`, StartType: StartDelayed}, ""},
		{"no ProgramData", []string{"status"}, testEnv("", `C:\x`), Options{Action: Status, Name: "finesse-relay", DisplayName: "Finesse Relay",
			ConfigPath: `C:\ProgramData\finesse-relay\relay.env`, LogPath: `C:\ProgramData\finesse-relay\finesse-relay.log`, StartType: StartDelayed}, ""},
		{"named instance, relative config, manual start", []string{"install", "--name", "relay-b", "--config", `conf\b.env`, "--start", "manual"}, env,
			Options{Action: Install, Name: "relay-b", DisplayName: "Finesse Relay (relay-b)",
				ConfigPath: `C:\Users\ops\relay\conf\b.env`, LogPath: `D:\PD\finesse-relay\relay-b.log`, StartType: StartManual}, ""},
		{"absolute paths with forward slashes", []string{"run", "--config", "E:/relay/relay.env", "--log-file", `\\logs\share\relay.log`}, env,
			Options{Action: Run, Name: "finesse-relay", DisplayName: "Finesse Relay",
				ConfigPath: `E:\relay\relay.env`, LogPath: `\\logs\share\relay.log`, StartType: StartDelayed}, ""},
		{"root-relative path takes the current drive", []string{"start", "--config", `\etc\relay.env`}, env,
			Options{Action: Start, Name: "finesse-relay", DisplayName: "Finesse Relay",
				ConfigPath: `C:\etc\relay.env`, LogPath: `D:\PD\finesse-relay\finesse-relay.log`, StartType: StartDelayed}, ""},
		{"no sub-command", nil, env, Options{}, "name a sub-command"},
		{"flag first", []string{"--name", "x"}, env, Options{}, "name a sub-command"},
		{"unknown sub-command", []string{"restart"}, env, Options{}, `unknown sub-command "restart"`},
		{"unknown flag", []string{"install", "--bogus"}, env, Options{}, "bogus"},
		{"extra argument", []string{"stop", "now"}, env, Options{}, `unexpected argument "now"`},
		{"bad start type", []string{"install", "--start", "boot"}, env, Options{}, "--start"},
		{"start type outside install", []string{"status", "--start", "auto"}, env, Options{}, "only applies to service install"},
		{"name with backslash", []string{"install", "--name", `a\b`}, env, Options{}, "--name"},
		{"empty name", []string{"install", "--name", ""}, env, Options{}, "--name"},
		{"drive-relative path", []string{"install", "--config", "C:relay.env"}, env, Options{}, "full path"},
		{"quote in path", []string{"install", "--config", `C:\a"b`}, env, Options{}, "quotes"},
		{"relative path, unknown cwd", []string{"install", "--config", "relay.env"},
			Env{Getenv: env.Getenv, Getwd: func() (string, error) { return "", errors.New("gone") }}, Options{}, "working directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.args, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRunArgsRoundTrip(t *testing.T) {
	env := testEnv(`C:\ProgramData`, `C:\`)
	o, err := Parse([]string{"install", "--name", "relay 2", "--config", `D:\cfg\relay.env`, "--start", "auto"}, env)
	if err != nil {
		t.Fatal(err)
	}
	args := o.RunArgs()
	if args[0] != "service" {
		t.Fatalf("RunArgs = %q", args)
	}
	back, err := Parse(args[1:], env)
	if err != nil {
		t.Fatal(err)
	}
	want := o
	want.Action, want.StartType = Run, StartDelayed
	if back != want {
		t.Fatalf("the SCM's command line parses back to\n%+v\nwant\n%+v", back, want)
	}
	if got := strings.Join(o.ServeArgs(), " "); got != `--config D:\cfg\relay.env` {
		t.Fatalf("ServeArgs = %q", got)
	}
}

func TestWindowsPaths(t *testing.T) {
	for _, tc := range []struct {
		in  []string
		out string
	}{
		{[]string{`C:\ProgramData\`, "finesse-relay", "relay.env"}, `C:\ProgramData\finesse-relay\relay.env`},
		{[]string{`C:/a/`, `/b/`, "c"}, `C:\a\b\c`},
		{[]string{`\\srv\share`, "x"}, `\\srv\share\x`},
	} {
		if got := WinJoin(tc.in...); got != tc.out {
			t.Errorf("WinJoin(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
	for p, abs := range map[string]bool{`C:\x`: true, `c:/x`: true, `\\srv\share`: true, `C:x`: false, `\x`: false, `x\y`: false, "": false, `\\`: false} {
		if IsAbsWindows(p) != abs {
			t.Errorf("IsAbsWindows(%q) = %v, want %v", p, !abs, abs)
		}
	}
}

func TestMainOutsideWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("this checks the message on other systems")
	}
	var out, errb bytes.Buffer
	serve := func(context.Context, []string, io.Writer, io.Writer) int { t.Fatal("serve must not run"); return 0 }
	env := testEnv(`C:\ProgramData`, `C:\`)
	if code := Main(context.Background(), []string{"install"}, &out, &errb, env, serve); code != 2 || !strings.Contains(errb.String(), "systemd") {
		t.Fatalf("install on %s: exit %d, stderr %q; want 2 and a pointer to the Linux install", runtime.GOOS, code, errb.String())
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"bogus"}, &out, &errb, env, serve); code != 2 || !strings.Contains(errb.String(), "usage:") {
		t.Fatalf("bogus: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"-h"}, &out, &errb, env, serve); code != 0 || !strings.Contains(out.String(), "install") {
		t.Fatalf("-h: exit %d, stdout %q", code, out.String())
	}
}

// fakeEventLog records what the service writes to the event log.
type fakeEventLog struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeEventLog) add(kind string, eid uint32, msg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf("%s/%d: %s", kind, eid, msg))
	return nil
}
func (f *fakeEventLog) Info(eid uint32, msg string) error    { return f.add("info", eid, msg) }
func (f *fakeEventLog) Warning(eid uint32, msg string) error { return f.add("warning", eid, msg) }
func (f *fakeEventLog) Error(eid uint32, msg string) error   { return f.add("error", eid, msg) }
func (f *fakeEventLog) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

func TestEventWriterForwardsWarningsAndErrorsOnly(t *testing.T) {
	ev := &fakeEventLog{}
	w := NewEventWriter(ev)
	input := `{"level":"info","msg":"relay listening"}` + "\n" +
		`{"level":"debug","msg":"x"}` + "\n" +
		`{"level":"warn","msg":"INSECURE_SKIP_VERIFY is on"}` + "\n" +
		"2026-12-02T05:00:00Z\t\x1b[31mERROR\x1b[0m\trelay stopped\n" +
		`{"level":"error","msg":"split` // no newline yet: held
	if _, err := io.WriteString(w, input); err != nil {
		t.Fatal(err)
	}
	if got := len(ev.all()); got != 2 {
		t.Fatalf("before the last newline: %d events %q, want 2", got, ev.all())
	}
	_, _ = io.WriteString(w, ` line"}`+"\n")
	want := []string{
		`warning/2: {"level":"warn","msg":"INSECURE_SKIP_VERIFY is on"}`,
		"error/2: 2026-12-02T05:00:00Z\t\x1b[31mERROR\x1b[0m\trelay stopped",
		`error/2: {"level":"error","msg":"split line"}`,
	}
	if got := ev.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

func TestLineLevel(t *testing.T) {
	for line, want := range map[string]string{
		`{"level":"WARN","msg":"m"}`:         "warn",
		`{"msg":"no level"}`:                 "",
		`{not json`:                          "",
		"ts\tinfo\tmsg":                      "info",
		"ts\t\x1b[35mDPANIC\x1b[0m\tmsg\tkv": "dpanic",
		"plain text":                         "",
	} {
		if got := LineLevel(line); got != want {
			t.Errorf("LineLevel(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestOpenLogCreatesAppendsAndRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "relay.log")
	f, err := OpenLog(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("first run\n")
	f.Close()
	f, err = OpenLog(path, 10) // 10 bytes: not over the limit yet
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("second run\n")
	f.Close()
	if b, _ := os.ReadFile(path); string(b) != "first run\nsecond run\n" {
		t.Fatalf("appended log = %q", b)
	}
	f, err = OpenLog(path, 10) // now 21 bytes: moved to .1
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(path + ".1"); string(b) != "first run\nsecond run\n" {
		t.Fatalf("rotated log = %q", b)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("fresh log has %d bytes", st.Size())
	}
	if _, err := OpenLog(filepath.Join(path+".1", "x.log"), 10); err == nil || !strings.Contains(err.Error(), "x.log") {
		t.Fatalf("a log under a file: err = %v, want one naming the path", err)
	}
}

// fakeServe behaves like cmdServe: it serves until its context ends, logs the
// shutdown, and returns 0; or fails on its own after failAfter.
func fakeServe(gotArgs chan<- []string, failAfter time.Duration) ServeFunc {
	return func(ctx context.Context, args []string, _, stderr io.Writer) int {
		gotArgs <- args
		fmt.Fprintln(stderr, `{"level":"info","msg":"relay listening"}`)
		if failAfter > 0 {
			select {
			case <-time.After(failAfter):
				fmt.Fprintln(stderr, `{"level":"error","msg":"relay stopped: listener closed"}`)
				return 1
			case <-ctx.Done():
			}
		}
		<-ctx.Done()
		time.Sleep(30 * time.Millisecond) // in-flight requests finishing
		fmt.Fprintln(stderr, `{"level":"info","msg":"shutting down"}`)
		return 0
	}
}

func TestRunnerStopIsGraceful(t *testing.T) {
	o, _ := Parse([]string{"run", "--config", `C:\r\relay.env`}, testEnv(`C:\PD`, `C:\`))
	var logBuf syncBuffer
	ev := &fakeEventLog{}
	args := make(chan []string, 1)
	r := startRunner(context.Background(), o, fakeServe(args, 0), &logBuf, ev)
	if got := <-args; strings.Join(got, " ") != `--config C:\r\relay.env` {
		t.Fatalf("serve args %q", got)
	}
	if code := r.Stop("service stop"); code != 0 {
		t.Fatalf("Stop = %d, want 0", code)
	}
	if code := r.Stop("again"); code != 0 {
		t.Fatalf("second Stop = %d", code)
	}
	log := logBuf.String()
	for _, want := range []string{"starting: serve --config C:\\\\r\\\\relay.env", "relay listening", "stopping (service stop)", "shutting down", "stopped in"} {
		if !strings.Contains(log, want) {
			t.Errorf("log file lacks %q:\n%s", want, log)
		}
	}
	if strings.Index(log, "shutting down") > strings.Index(log, "stopped in") {
		t.Errorf("the service reported stopped before the relay finished:\n%s", log)
	}
	evs := ev.all()
	if len(evs) != 3 || !strings.HasPrefix(evs[0], "info/1: service finesse-relay starting") || !strings.HasPrefix(evs[2], "info/1: service finesse-relay stopped") {
		t.Fatalf("event log = %q, want start, stopping, stopped (info lines of the relay stay out)", evs)
	}
}

func TestRunnerFailureIsReportedForRecovery(t *testing.T) {
	o, _ := Parse([]string{"run"}, testEnv(`C:\PD`, `C:\`))
	var logBuf syncBuffer
	ev := &fakeEventLog{}
	r := startRunner(context.Background(), o, fakeServe(make(chan []string, 1), 20*time.Millisecond), &logBuf, ev)
	var code int
	select {
	case code = <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("serve's failure never surfaced")
	}
	if got := r.Exited(code); got != 1 {
		t.Fatalf("Exited = %d, want 1 (non-zero, so the SCM's recovery restarts it)", got)
	}
	evs := strings.Join(ev.all(), "\n")
	if !strings.Contains(evs, `error/2: {"level":"error","msg":"relay stopped: listener closed"}`) || !strings.Contains(evs, "error/1: service finesse-relay: the relay stopped on its own (exit status 1)") {
		t.Fatalf("event log:\n%s", evs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
