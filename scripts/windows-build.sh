#!/usr/bin/env bash
# Cross-compile and vet for Windows (the service code lives in _windows.go
# files that the Linux build never sees).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
GOOS=windows GOARCH=amd64 go vet ./...
GOOS=windows GOARCH=amd64 go build -o /dev/null ./server
echo "windows/amd64 vet + build ok in $((SECONDS - start)) s"
