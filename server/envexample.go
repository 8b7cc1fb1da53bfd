package main

import (
	"fmt"
	"io"
	"strings"
)

// writeEnvExample writes configs/relay.env.example from the key table, so
// the documented keys and defaults cannot drift from what the relay accepts.
func writeEnvExample(w io.Writer) {
	fmt.Fprint(w, `# finesse-relay configuration (generated from server/config.go: go test ./server -run EnvExample -update)
#
# Copy to relay.env (read from the working directory) or pass --config FILE.
# Precedence: defaults < this file < environment variables < flags (--set KEY=VALUE).
# Environment names: upper case with '.', '-' and camelCase turned into '_'
# (server.port -> SERVER_PORT, allowedOrigins -> ALLOWED_ORIGINS).
# Unknown keys are errors. Keys of the Expertflow SSO Utility keep their names
# (the alias after "also:" is accepted too).
`)
	for _, k := range keys {
		fmt.Fprintf(w, "\n# %s\n", k.help)
		if len(k.aliases) > 0 {
			fmt.Fprintf(w, "# also: %s\n", strings.Join(k.aliases, ", "))
		}
		fmt.Fprintf(w, "#%s=%s\n", k.name, k.def)
	}
}

// configTable is the README's configuration table, generated from the same
// key table (go test ./server -run EnvExample -update rewrites it).
func configTable() string {
	var b strings.Builder
	b.WriteString("| key | default | meaning |\n|---|---|---|\n")
	for _, k := range keys {
		names := "`" + k.name + "`"
		for _, a := range k.aliases {
			names += " / `" + a + "`"
		}
		def := k.def
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", names, def, strings.ReplaceAll(k.help, "|", "\\|"))
	}
	return b.String()
}
