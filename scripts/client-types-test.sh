#!/usr/bin/env bash
# The typed JS client (web/client): its relay-client.js is the file the relay
# serves as /static/relay-client.js, "npm pack" ships only the client and its
# declarations, and a small TypeScript consumer of the packed tarball
# type-checks with tsc --noEmit (strict; its @ts-expect-error lines must stay
# errors). Called from scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../web/client"
t0=$SECONDS
want_tsc=$(node -p 'require("./package.json").devDependencies.typescript')
if [ "$(node_modules/.bin/tsc --version 2>/dev/null)" != "Version $want_tsc" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
work=$(mktemp -d /tmp/finesse-relay-client.XXXXXX)
trap 'rm -rf "$work"' EXIT
tgz=$(npm pack --silent --pack-destination "$work")
contents=$(tar -tzf "$work/$tgz" | sort | tr '\n' ' ')
[ "$contents" = "package/package.json package/relay-client.d.ts package/relay-client.js " ] || { echo "client-types-test: the tarball holds: $contents"; exit 1; }
# Install the tarball the way npm does (unpacked under node_modules), offline.
mkdir -p "$work/consumer/node_modules/finesse-relay-client"
tar -xzf "$work/$tgz" -C "$work/consumer/node_modules/finesse-relay-client" --strip-components=1
cp test/consumer.ts test/tsconfig.json "$work/consumer/"
echo '{"private": true, "type": "module"}' >"$work/consumer/package.json"
node_modules/.bin/tsc -p "$work/consumer/tsconfig.json"
echo "client-types-test: $tgz type-checks with tsc $(node_modules/.bin/tsc --version | awk '{print $2}') in $((SECONDS - t0)) s"
