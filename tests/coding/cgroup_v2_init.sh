#!/bin/sh
# PID 1 of the User-mode Linux guest of test_cgroup_v2.py. Its root is the host's
# file system (hostfs); what it mounts here is the guest's own. SAFEXAM_REPO and
# SAFEXAM_PYTHON come from the kernel's command line.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The guest's own temporary files go to a tmpfs of its own under /run, not over
# /tmp, which may hold the repository itself (CI clones it there).
mount -t tmpfs tmpfs /run
mkdir -m 1777 /run/tmp
# The unified hierarchy alone, as on Debian 12, Ubuntu 22.04+ or a Kubernetes node.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
# A worker in a group of its own with processes in it, as in a container
# (compose.yaml's cgroup: private) or a systemd service with Delegate=yes.
mkdir /sys/fs/cgroup/judge
echo $$ > /sys/fs/cgroup/judge/cgroup.procs
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export PYTHONDONTWRITEBYTECODE=1 TMPDIR=/run/tmp
cd "$SAFEXAM_REPO" && "$SAFEXAM_PYTHON" -m tests.coding.cgroup_v2_inside 2>&1
echo "safexam-v2 {\"check\": \"exit\", \"status\": $?}"
poweroff -f
