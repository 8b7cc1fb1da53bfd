package main

import (
	"io"
	"os"
	"regexp"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// redacted replaces every secret the logger sees.
const redacted = "[REDACTED]"

// secretKeys are field names whose values are never logged, compared
// case-insensitively with '_' and '-' removed.
var secretKeys = map[string]bool{
	"password": true, "passwd": true, "pass": true, "secret": true, "clientsecret": true,
	"token": true, "accesstoken": true, "refreshtoken": true, "authtoken": true, "idtoken": true,
	"authorization": true, "cookie": true, "setcookie": true, "code": true, "authcode": true,
	"ticket": true, "session": true, "sessiontoken": true, "state": true, "keystorepassword": true,
}

// secretPatterns find secrets inside free text: credentials in headers,
// JWTs, and secret-bearing query parameters.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`),
	regexp.MustCompile(`(?i)([?&](?:code|state|ticket|token|access_token|refresh_token|authToken|password|client_secret)=)[^&\s"]+`),
}

// Redact removes secrets from free text.
func Redact(s string) string {
	for i, p := range secretPatterns {
		switch i {
		case 0:
			s = p.ReplaceAllString(s, "$1 "+redacted)
		case 2:
			s = p.ReplaceAllString(s, "${1}"+redacted)
		default:
			s = p.ReplaceAllString(s, redacted)
		}
	}
	return s
}

func isSecretKey(k string) bool {
	k = strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(k))
	return secretKeys[k]
}

// redactCore wraps a zapcore.Core so that no field named like a secret, and
// no secret-looking text in messages, errors or string fields, reaches the
// output. It is the last line of defence: code must not log secrets anyway.
type redactCore struct{ zapcore.Core }

func (c redactCore) With(fields []zapcore.Field) zapcore.Core {
	return redactCore{c.Core.With(redactFields(fields))}
}

func (c redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c redactCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = Redact(e.Message)
	return c.Core.Write(e, redactFields(fields))
}

func redactFields(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch {
		case isSecretKey(f.Key):
			out[i] = zap.String(f.Key, redacted)
		case f.Type == zapcore.StringType:
			out[i] = zap.String(f.Key, Redact(f.String))
		case f.Type == zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				out[i] = zap.String(f.Key, Redact(err.Error()))
			} else {
				out[i] = f
			}
		case f.Type == zapcore.StringerType:
			if s, ok := f.Interface.(interface{ String() string }); ok {
				out[i] = zap.String(f.Key, Redact(s.String()))
			} else {
				out[i] = f
			}
		case f.Type == zapcore.ArrayMarshalerType || f.Type == zapcore.ObjectMarshalerType || f.Type == zapcore.ReflectType:
			// Structured values could hide secrets in nested fields: keep
			// them when their JSON text holds no secret, else log the
			// redacted text instead.
			if txt := fieldText(f); Redact(txt) != txt {
				out[i] = zap.String(f.Key, Redact(txt))
			} else {
				out[i] = f
			}
		default:
			out[i] = f
		}
	}
	return out
}

// fieldText renders one structured field as JSON text.
func fieldText(f zapcore.Field) string {
	buf, err := zapcore.NewJSONEncoder(zapcore.EncoderConfig{}).EncodeEntry(zapcore.Entry{}, []zapcore.Field{f})
	if err != nil {
		return "?"
	}
	defer buf.Free()
	return strings.TrimSpace(buf.String())
}

// newLogger builds the relay's logger: JSON for production, colour console
// for a terminal or the demo, always behind the redacting core.
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "console"
		}
	}
	var enc zapcore.Encoder
	if format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(redactCore{core}, zap.ErrorOutput(zapcore.AddSync(w))), nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
