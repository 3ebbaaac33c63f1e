#!/usr/bin/env bash
# The full test suite, from a clean clone on a fresh machine:
# installs what it needs (Debian packages the tests drive for real, pnpm
# through npx, the workspace's locked dependencies), then typechecks and runs
# every test (after `pnpm build`: spawned agents run the compiled code).
# `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM="npx --yes pnpm@10.34.8"

# Real automation the tests drive: ansible-playbook (executors, the lb charm)
# and nginx (the lb charm runs its own nginx master per unit, on a high port;
# the system nginx service is never used). iproute2 and iptables: the
# multi-host tests run hosts as network namespaces (test/hosts/). zookeeper
# and a JRE, postgresql: the zookeeper and postgresql charms run real servers
# (test/e2e-zookeeper, test/e2e-postgresql), never the system services;
# openssh: test/ssh-deploy starts its own sshd per network namespace.
scripts/ensure-apt.sh ansible-core nginx iproute2 iptables zookeeper default-jre-headless postgresql openssh-server openssh-client chromium

$PNPM install --frozen-lockfile --reporter=append-only
$PNPM typecheck
$PNPM lint
# Agents and the CLI run compiled JavaScript: processes the tests spawn need dist/.
$PNPM build
$PNPM test

# The release installs into an empty prefix and runs from there.
$PNPM release
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
npm install -g --prefix "$prefix" --no-audit --no-fund --prefer-offline "./dist/rhizome-$(node -p 'require("./package.json").version').tgz"
(cd "$prefix" && "$prefix/bin/rhizome" version)
