package main

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedImports is the import rule of docs/architecture.md: for each package prefix of ours,
// the packages of ours it may import (production code; tests may import more).
// Longer prefixes win.
var allowedImports = map[string][]string{
	"finesse-relay/xmpp/finesse":   {},
	"finesse-relay/xmpp/bosh/wire": {},
	"finesse-relay/xmpp/bosh":      {"finesse-relay/xmpp/finesse", "finesse-relay/xmpp/bosh/wire"},
	"finesse-relay/xmpp":           {"finesse-relay/xmpp/finesse", "finesse-relay/xmpp/bosh"},
	"finesse-relay/httpx":          {},
	"finesse-relay/gadget":         {"finesse-relay/httpx"},
	"finesse-relay/server/cred":    {},
	"finesse-relay/server/seal":    {},
	"finesse-relay/server/store":   {},
	"finesse-relay/server/signin": {"finesse-relay/httpx", "finesse-relay/gadget", "finesse-relay/server/agent", "finesse-relay/server/cred",
		"finesse-relay/server/ids", "finesse-relay/server/rest", "finesse-relay/server/store", "finesse-relay/xmpp/finesse"},
	"finesse-relay/web":          {"finesse-relay/httpx"},
	"finesse-relay/server/ids":   {},
	"finesse-relay/server/rest":  {"finesse-relay/xmpp/finesse", "finesse-relay/server/cred", "finesse-relay/httpx"},
	"finesse-relay/server/agent": {"finesse-relay/xmpp/finesse", "finesse-relay/server/cred"},
	"finesse-relay/server/cluster": {"finesse-relay/gadget", "finesse-relay/server/agent", "finesse-relay/server/cred",
		"finesse-relay/server/store", "finesse-relay/xmpp/finesse"},
	"finesse-relay/server/sim":       {"finesse-relay/xmpp/finesse", "finesse-relay/xmpp/bosh/wire", "finesse-relay/server/sim/"},
	"finesse-relay/scripts":          {},
	"finesse-relay/server":           {"finesse-relay/"},
	"finesse-relay/server/bench":     {"finesse-relay/xmpp", "finesse-relay/xmpp/finesse", "finesse-relay/server/sim"},
	"finesse-relay/internal":         {},
	"finesse-relay/server/sdnotify":  {},
	"finesse-relay/server/winsvc":    {},
	"finesse-relay/server/certwatch": {},
}

func rulesFor(pkg string) (prefix string, allowed []string) {
	for p, a := range allowedImports {
		if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(p) > len(prefix) {
			prefix, allowed = p, a
		}
	}
	return prefix, allowed
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "finesse-relay/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		prefix, allowed := rulesFor(pkg)
		if prefix == "" {
			t.Errorf("%s: no import rule covers this package; add it to allowedImports (and docs/architecture.md's layout)", pkg)
			continue
		}
		checked++
		for _, imp := range imports {
			if !strings.HasPrefix(imp, "finesse-relay/") {
				continue
			}
			if imp == "finesse-relay/server" {
				t.Errorf("%s imports %s: nothing may import the main package", pkg, imp)
			}
			ok := false
			for _, a := range allowed {
				if imp == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a)) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s, which docs/architecture.md's import rule forbids (allowed: %v)", pkg, imp, allowed)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package checked")
	}
}

func TestImportRuleTable(t *testing.T) {
	tests := []struct{ pkg, want string }{
		{"finesse-relay/xmpp", "finesse-relay/xmpp"},
		{"finesse-relay/xmpp/bosh", "finesse-relay/xmpp/bosh"},
		{"finesse-relay/server/sim/xmppd", "finesse-relay/server/sim"},
		{"finesse-relay/server", "finesse-relay/server"},
		{"finesse-relay/server/agent", "finesse-relay/server/agent"},
	}
	for _, tt := range tests {
		if got, _ := rulesFor(tt.pkg); got != tt.want {
			t.Errorf("rulesFor(%s) = %s, want %s", tt.pkg, got, tt.want)
		}
	}
}
