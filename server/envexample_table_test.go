package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestPrintConfigTable prints the README configuration table (go test -run
// PrintConfigTable -v ./server) so it can be pasted when keys change.
func TestPrintConfigTable(t *testing.T) {
	if !testing.Verbose() {
		t.Skip("prints the README table with -v")
	}
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
	t.Log("\n" + b.String())
}
