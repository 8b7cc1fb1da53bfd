package winsvc

import (
	"fmt"
	"strings"
)

// DefaultDir is %ProgramData%\finesse-relay, the service's home for relay.env,
// its log, the file store and the sealing key (C:\ProgramData when the
// variable is missing, as on every Windows since Vista).
func DefaultDir(getenv func(string) string) string {
	pd := ""
	if getenv != nil {
		pd = getenv("ProgramData")
	}
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return WinJoin(pd, "finesse-relay")
}

// WinJoin joins Windows path elements with single backslashes (forward
// slashes are accepted and turned into backslashes).
func WinJoin(elem ...string) string {
	var parts []string
	for i, e := range elem {
		e = strings.ReplaceAll(e, "/", `\`)
		if i > 0 {
			e = strings.TrimLeft(e, `\`)
		}
		if i < len(elem)-1 {
			e = strings.TrimRight(e, `\`)
		}
		if e != "" {
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, `\`)
}

// IsAbsWindows reports whether p is an absolute Windows path: a drive letter
// and a separator (C:\x) or a UNC path (\\server\share).
func IsAbsWindows(p string) bool {
	p = strings.ReplaceAll(p, "/", `\`)
	if strings.HasPrefix(p, `\\`) {
		return len(p) > 2
	}
	return len(p) >= 3 && isLetter(p[0]) && p[1] == ':' && p[2] == '\\'
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// resolve returns p made absolute against the working directory (a service
// runs in System32, so a relative path given at install time would otherwise
// point there), or def when p is empty.
func resolve(p, def string, getwd func() (string, error)) (string, error) {
	if p == "" {
		return def, nil
	}
	if strings.ContainsAny(p, "\"\x00") {
		return "", fmt.Errorf("%q: a path cannot contain quotes", p)
	}
	if IsAbsWindows(p) {
		return WinJoin(p), nil
	}
	if len(p) >= 2 && isLetter(p[0]) && p[1] == ':' {
		return "", fmt.Errorf("%q is relative to a drive's current directory: give a full path such as C:\\finesse-relay\\relay.env", p)
	}
	if getwd == nil {
		return "", fmt.Errorf("%q is relative and the working directory is unknown: give a full path", p)
	}
	wd, err := getwd()
	if err != nil {
		return "", fmt.Errorf("%q is relative and the working directory is unreadable (%v): give a full path", p, err)
	}
	if strings.HasPrefix(strings.ReplaceAll(p, "/", `\`), `\`) && len(wd) >= 2 && wd[1] == ':' {
		return WinJoin(wd[:2], p), nil // \dir\file: the current drive's root
	}
	return WinJoin(wd, p), nil
}
