#!/usr/bin/env bash
# ensure-apt.sh PACKAGE... — install Debian packages only when missing.
#
# Idempotent and quiet: packages `dpkg -s` already reports as installed are
# skipped; `apt-get update` runs at most once per invocation, and only when
# something must be installed and the package lists are absent or stale
# (older than a day). Installs with --no-install-recommends.
#
# Example: scripts/ensure-apt.sh ansible-core
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/ensure-apt.sh PACKAGE..." >&2
  exit 2
fi

missing=()
for pkg in "$@"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "ensure-apt: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive

# Run a command with its output captured; show the output only if it fails.
quietly() {
  local out
  out="$(mktemp)"
  if ! "$@" >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    echo "ensure-apt: failed: $*" >&2
    return 1
  fi
  rm -f "$out"
}

# Refresh the package lists once, if they are missing or older than a day.
lists=/var/lib/apt/lists
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mtime -1 -print -quit 2>/dev/null)" ]; then
  quietly $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
fi

# Packages such as nginx start a system service on install. We only want the
# programs (our charms run their own processes on high ports), so service
# starts are denied for the duration of the install unless the machine
# already has a policy.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  added_policy=1
  trap '[ -n "$added_policy" ] && $SUDO rm -f "$policy"' EXIT
fi

echo "ensure-apt: installing ${missing[*]}" >&2
quietly $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
