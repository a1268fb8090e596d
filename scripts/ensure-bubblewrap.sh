#!/usr/bin/env bash
# The embedded code sandbox runs every compile and test inside bubblewrap
# (Debian package `bubblewrap`). Its first process inside measures peak memory:
# a small launcher compiled at worker start when a C compiler is present, else
# GNU time (package `time`), installed here as that fallback. The sandbox's
# seccomp filter is built by libseccomp (package `libseccomp2`). Install them when
# missing and we are root; otherwise say how, and fail, since coding questions
# cannot be graded without them.
set -euo pipefail

have_seccomp() {
    ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2'
}

if command -v bwrap >/dev/null 2>&1 && [ -x /usr/bin/time ] && have_seccomp; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "bubblewrap (bwrap), GNU time or libseccomp is missing; the code sandbox needs them." >&2
    echo "Install them with:  sudo apt-get install -y bubblewrap time libseccomp2   (Debian/Ubuntu)" >&2
    echo "                 or: sudo dnf install -y bubblewrap time libseccomp       (Fedora)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "bubblewrap or GNU time is missing and apt-get is not available: install bubblewrap and time with your package manager." >&2
    exit 1
fi

echo "installing bubblewrap, GNU time and libseccomp (code sandbox)..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: refresh once on failure.
if ! apt-get install -y -q bubblewrap time libseccomp2 >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q bubblewrap time libseccomp2 >/dev/null
fi
{ command -v bwrap >/dev/null 2>&1 && [ -x /usr/bin/time ] && have_seccomp; } || { echo "bubblewrap/time/libseccomp installation failed" >&2; exit 1; }
echo "bubblewrap installed: $(bwrap --version)"
