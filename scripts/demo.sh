#!/usr/bin/env bash
# The main job, from a clean clone on a fresh machine: installs what it needs,
# then runs the demo (examples/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM="npx --yes pnpm@10.34.8"
# The five-machine demo runs real sshd servers in network namespaces (root only);
# without root, or with --local, the demo runs on 127.0.0.1 and needs neither.
if [ "$(id -u)" = 0 ] && [[ " $* " != *" --local "* ]]; then
  scripts/ensure-apt.sh openssh-server openssh-client iproute2
fi
$PNPM install --frozen-lockfile --reporter=silent
# Agents and the CLI run compiled JavaScript.
$PNPM --silent build
exec $PNPM --silent demo "$@"
