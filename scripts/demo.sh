#!/usr/bin/env bash
# The main job, from a clean clone on a fresh machine: installs what it needs,
# then runs the demo (examples/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM="npx --yes pnpm@10.34.8"
$PNPM install --frozen-lockfile --reporter=silent
# Agents and the CLI run compiled JavaScript.
$PNPM --silent build
exec $PNPM --silent demo "$@"
