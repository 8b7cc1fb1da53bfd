package rest

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		apiErrorsXML("Invalid Input", "INVALID_STATE", "x"),
		`<apiErrors><apiError><errorType>Device Busy</errorType></apiError></apiErrors>`,
		tomcat500, "<html><title>a</title", "plain\x00text", "<ApiErrors><ApiError>", "\xff\xfe<", "",
		strings.Repeat("<a>", 1000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		errs, text := parseErrorBody(body)
		if len(errs) > 0 && text != "" {
			t.Fatalf("both errors and text: %q", text)
		}
		if !utf8.ValidString(text) || utf8.RuneCountInString(text) > maxSummary {
			t.Fatalf("text not bounded valid UTF-8: %q", text)
		}
		for _, r := range text {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("unprintable %U in %q", r, text)
			}
		}
		e := &APIError{Status: 500, Errors: errs, Text: text}
		_ = e.Error()
	})
}

// FuzzProxyRoute: whatever the proxy admits is a clean path under
// /finesse/api/ that the client sends unchanged.
func FuzzProxyRoute(f *testing.F) {
	for _, s := range []string{
		"/api/finesse/User/1001", "/api/finesse/User/../SystemInfo", "/api/finesse/User/..%2FSystemInfo",
		"/api/finesse/User/1001/Media/1", "/api/finesse/Dialog/a..b", "/api/finesse/User/%2e%2e", "/api/finesse//User/1",
		"/api/finesse/User/1001;x", "/api/finesse/ReasonCodes",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		path, ok := proxyPath(u)
		if !ok {
			return
		}
		for _, m := range []string{"GET", "PUT", "POST"} {
			rt, allowed := match(m, path)
			if rt == nil || !allowed {
				continue
			}
			for _, seg := range strings.Split(path, "/") {
				if seg == "" || seg == "." || strings.Contains(seg, "..") || strings.ContainsAny(seg, "%;\\?#") {
					t.Fatalf("%s %q admitted with segment %q", m, path, seg)
				}
			}
			s, err := requestURL(Side{Name: "A", BaseURL: "https://finesse.example.com:8445"}, path, nil)
			if err != nil {
				t.Fatalf("proxy admits %q but the client refuses it: %v", path, err)
			}
			sent, err := url.Parse(s)
			if err != nil || sent.Path != "/finesse/api/"+path || sent.Host != "finesse.example.com:8445" {
				t.Fatalf("%q sent as %q", path, s)
			}
		}
	})
}

// FuzzCheckPath: a path the client accepts never leaves /finesse/api/ on
// the configured host.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"User/1001", "User/%2e%2e/x", "User/a%2Fb", "../x", "User/%zz", "/finesse/api/User/1", "User/x@y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		s, err := requestURL(Side{Name: "A", BaseURL: "https://finesse.example.com:8445"}, p, nil)
		if err != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q built unparsable %q", p, s)
		}
		if u.Host != "finesse.example.com:8445" || u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/finesse/api/") {
			t.Fatalf("accepted %q escapes: %q", p, s)
		}
		for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/finesse/api/"), "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q has segment %q (%s)", p, seg, s)
			}
		}
	})
}
