#!/usr/bin/env bash
# The cross-host test and bench (tests/hosts/, bench/cross_host.py) put Debian's
# Caddy in front of two API hosts, as deploy/Caddyfile does in compose. Install
# the Debian package `caddy` when it is missing and we are root; otherwise say
# how. Only that test needs it (and it runs as root only), so a machine without
# it still runs SafeExam: this warns rather than fails when it cannot install.
# Where systemd runs, the package also enables its own service on port 80; the
# test never uses it (it starts a Caddy of its own inside a network namespace).
set -euo pipefail

if command -v caddy >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Caddy is missing; the cross-host test (tests/hosts/, run as root) needs it." >&2
    echo "Install it with:  sudo apt-get install -y caddy   (Debian 12 or newer)" >&2
    exit 0
fi

echo "installing caddy (the proxy of the cross-host test)..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: refresh once on failure.
if ! apt-get install -y -q --no-install-recommends caddy >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends caddy >/dev/null
fi
command -v caddy >/dev/null 2>&1 || { echo "caddy installation failed" >&2; exit 1; }
echo "caddy installed: $(caddy version 2>/dev/null | head -n 1)"
