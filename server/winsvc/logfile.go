package winsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// OpenLog opens the service's log file for appending, creating its directory.
// A log over max bytes is first renamed to path+".1" so two generations
// (at most about 2 x max) are kept.
func OpenLog(path string, max int64) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("log file %s: create its directory: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Size() > max {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, fmt.Errorf("log file %s: move the full log aside: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640) // #nosec G302 G304 -- the operator's log path; group-readable for log shippers
	if err != nil {
		return nil, fmt.Errorf("log file %s: %w (check --log-file and the service account's rights)", path, err)
	}
	return f, nil
}

// EventSink is the part of the Windows event log (*eventlog.Log) the service
// writes to.
type EventSink interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event ids: the service's own life cycle, and relay log lines.
const (
	EventLifecycle uint32 = 1
	EventRelayLog  uint32 = 2
)

// maxEventSize bounds one event-log message (the API limit is 31,839 characters).
const maxEventSize = 16 << 10

// EventWriter is an io.Writer for the relay's logger that passes warnings and
// errors to the event log (info and debug lines stay in the log file only:
// the event log is for what an operator must see). The relay's log lines have
// already been through its redacting core.
type EventWriter struct {
	mu   sync.Mutex
	sink EventSink
	buf  []byte
}

// NewEventWriter writes warning-and-above lines to sink.
func NewEventWriter(sink EventSink) *EventWriter { return &EventWriter{sink: sink} }

// Write accepts one or more newline-terminated log lines (a partial line is
// kept until its newline arrives). It never fails: the event log is a copy.
func (w *EventWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(w.buf[:i], "\r"))
		w.buf = w.buf[i+1:]
		w.emit(line)
	}
	if len(w.buf) > maxEventSize { // a runaway line without newline
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *EventWriter) emit(line string) {
	if len(line) > maxEventSize {
		line = line[:maxEventSize] + "…"
	}
	switch LineLevel(line) {
	case "warn":
		_ = w.sink.Warning(EventRelayLog, line)
	case "error", "dpanic", "panic", "fatal":
		_ = w.sink.Error(EventRelayLog, line)
	}
}

// LineLevel is the zap level of one log line: the "level" field of a JSON
// line (what the relay writes when not on a terminal, as under the SCM), or
// the second tab-separated field of a console line; "" when there is none.
func LineLevel(line string) string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "{") {
		var v struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &v) == nil {
			return strings.ToLower(v.Level)
		}
		return ""
	}
	if f := strings.Split(line, "\t"); len(f) > 1 {
		return strings.ToLower(stripANSI(strings.TrimSpace(f[1])))
	}
	return ""
}

// stripANSI removes colour escapes (console format on a terminal).
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
