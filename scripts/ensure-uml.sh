#!/usr/bin/env bash
# tests/coding/test_cgroup_v2.py proves the sandbox's limits under cgroup v2 in
# a User-mode Linux guest (Debian package `user-mode-linux`: a Linux kernel that
# runs as an ordinary process, /usr/bin/linux.uml), since a machine whose
# controllers are bound to cgroup v1 cannot give them to v2 itself. Install it
# when missing and we are root; otherwise say how. Only that test needs it,
# so a machine without it still runs SafeExam: this warns rather than fails.
set -euo pipefail

if [ -x /usr/bin/linux.uml ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "User-mode Linux (/usr/bin/linux.uml) is missing; tests/coding/test_cgroup_v2.py needs it." >&2
    echo "Install it with:  sudo apt-get install -y user-mode-linux   (Debian/Ubuntu)" >&2
    exit 0
fi

echo "installing user-mode-linux (cgroup v2 sandbox test)..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: refresh once on failure.
if ! apt-get install -y -q --no-install-recommends user-mode-linux >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends user-mode-linux >/dev/null
fi
[ -x /usr/bin/linux.uml ] || { echo "user-mode-linux installation failed" >&2; exit 1; }
echo "user-mode-linux installed: $(dpkg-query -W -f '${Version}' user-mode-linux)"
