#!/usr/bin/env bash
# The alert rules in deploy/prometheus/ are unit-tested with `promtool test rules`
# (tests/ops/test_alert_rules.py). promtool comes with Debian's `prometheus`
# package. Install it when missing and we are root; otherwise say how, and fail,
# since those tests cannot run without it.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is missing; the alert rules' tests need it." >&2
    echo "Install it with:  sudo apt-get install -y prometheus   (Debian/Ubuntu)" >&2
    echo "              or: download promtool from https://prometheus.io/download/ onto your PATH" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool is missing and apt-get is not available: install Prometheus's promtool with your package manager." >&2
    exit 1
fi

echo "installing promtool (Debian package prometheus, for the alert rules' tests)..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: refresh once on failure.
if ! apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends prometheus >/dev/null
fi
command -v promtool >/dev/null 2>&1 || { echo "prometheus (promtool) installation failed" >&2; exit 1; }
echo "promtool installed: $(promtool --version 2>&1 | head -n 1)"
