#!/usr/bin/env bash
# Make PostgreSQL's server programs available for the store tests (tests/postgres_server.py
# starts its own throw-away server on loopback; nothing here starts or configures one).
# Installs Debian's postgresql package when no pg_ctl is found, on PATH or under
# /usr/lib/postgresql/*/bin. Needs root (or sudo) for apt-get; prints the pg_ctl it found.
set -euo pipefail

find_pg_ctl() {
  command -v pg_ctl 2>/dev/null && return 0
  ls -1 /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 | grep . && return 0
  return 1
}

if ! find_pg_ctl >/dev/null; then
  echo "PostgreSQL not found; installing Debian's postgresql package ..."
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: the package must not start the system's own cluster service.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -q postgresql >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q postgresql >/dev/null; }
fi

PG_CTL="$(find_pg_ctl)" || { echo "PostgreSQL is still missing after apt-get" >&2; exit 1; }
echo "PostgreSQL: $("$PG_CTL" --version) ($PG_CTL)"
