#!/usr/bin/env bash
# The embedded code sandbox runs every compile and test inside bubblewrap
# (Debian package `bubblewrap`). Install it when missing and we are root;
# otherwise say how, and fail, since coding questions cannot be graded without it.
set -euo pipefail

if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "bubblewrap (bwrap) is missing; the code sandbox needs it." >&2
    echo "Install it with:  sudo apt-get install -y bubblewrap   (Debian/Ubuntu)" >&2
    echo "               or: sudo dnf install -y bubblewrap       (Fedora)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "bubblewrap (bwrap) is missing and apt-get is not available: install bubblewrap with your package manager." >&2
    exit 1
fi

echo "installing bubblewrap (code sandbox)..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: refresh once on failure.
if ! apt-get install -y -q bubblewrap >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q bubblewrap >/dev/null
fi
command -v bwrap >/dev/null 2>&1 || { echo "bubblewrap installation failed" >&2; exit 1; }
echo "bubblewrap installed: $(bwrap --version)"
