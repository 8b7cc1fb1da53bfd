#!/usr/bin/env bash
# goreleaser: "check" on .goreleaser.yaml, then a snapshot release (linux
# amd64/arm64 and windows amd64 archives, checksums, .deb/.rpm) into a temp
# dir, and a look at what it produced. Called from scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
GORELEASER=$(scripts/tools.sh goreleaser)
echo "goreleaser ready in $((SECONDS - t0)) s"
work=$(mktemp -d /tmp/finesse-relay-release.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$GORELEASER" check --config .goreleaser.yaml
# The same configuration with dist/ moved out of the tree.
sed "s#^dist: dist\$#dist: $work/dist#" .goreleaser.yaml >"$work/goreleaser.yaml"
grep -q "^dist: $work/dist\$" "$work/goreleaser.yaml" || { echo "release-test: .goreleaser.yaml has no 'dist: dist' line to redirect"; exit 1; }
s=$SECONDS
"$GORELEASER" release --snapshot --clean --config "$work/goreleaser.yaml" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
echo "snapshot release built in $((SECONDS - s)) s"
cd "$work/dist"
for pat in '*_linux_amd64.tar.gz' '*_linux_arm64.tar.gz' '*_windows_amd64.zip' 'checksums.txt' '*_amd64.deb' '*_arm64.deb' '*.x86_64.rpm' '*.aarch64.rpm'; do
  compgen -G "$pat" >/dev/null || { echo "release-test: no $pat in the snapshot:"; ls; exit 1; }
done
sha256sum --quiet -c checksums.txt || { echo "release-test: checksums.txt does not match the artifacts"; exit 1; }
tar -tzf ./*_linux_amd64.tar.gz | grep -qx finesse-relay || { echo "release-test: the linux archive lacks the binary"; exit 1; }
echo "release-test: ok in $((SECONDS - t0)) s"
