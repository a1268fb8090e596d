#!/usr/bin/env bash
# The browser tests (tests/web/) drive Debian's Chromium at /usr/bin/chromium
# through Playwright; nothing is downloaded at test time. Install the Debian
# package `chromium` when it is missing and we are root; otherwise say how.
# Only the browser tests need it, so a machine without it still runs SafeExam:
# this warns rather than fails when it cannot install.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium (/usr/bin/chromium) is missing; the browser tests (tests/web/) need it." >&2
    echo "Install it with:  sudo apt-get install -y chromium   (Debian/Ubuntu)" >&2
    exit 0
fi

echo "installing chromium (browser tests)..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: refresh once on failure.
if ! apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "chromium installation failed" >&2; exit 1; }
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
