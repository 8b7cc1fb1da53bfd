package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite generated files")

func TestEnvExampleIsCurrent(t *testing.T) {
	var b strings.Builder
	writeEnvExample(&b)
	const path = "../configs/relay.env.example"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b.String() {
		t.Fatalf("%s is stale: run go test ./server -run EnvExample -update", path)
	}
	// The README's configuration table is generated from the same keys.
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := configTable()
	if *update {
		start := strings.Index(string(readme), "| key | default | meaning |")
		end := strings.Index(string(readme)[start:], "\n\n")
		if start < 0 || end < 0 {
			t.Fatal("README.md has no configuration table to replace")
		}
		readme = []byte(string(readme)[:start] + table + string(readme)[start+end+1:])
		if err := os.WriteFile("../README.md", readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(string(readme), table) {
		t.Fatal("README.md's configuration table is stale: run go test ./server -run EnvExample -update")
	}
}

func TestEnvExampleLoads(t *testing.T) {
	// The example, uncommented, must be a valid configuration except for the
	// keys that need real files or hosts.
	data, err := os.ReadFile("../configs/relay.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "#") && strings.Contains(l, "=") && !strings.Contains(l, " ") {
			if kv := strings.TrimPrefix(l, "#"); !strings.HasSuffix(kv, "=") {
				lines = append(lines, kv)
			}
		}
	}
	file := writeFile(t, t.TempDir(), "relay.env", strings.Join(lines, "\n"))
	if _, err := LoadConfig(LoadOptions{File: file, FileRequired: true, Getenv: noEnv}); err != nil {
		t.Fatalf("the example's defaults do not load: %v", err)
	}
}
