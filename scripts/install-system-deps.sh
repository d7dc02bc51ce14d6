#!/usr/bin/env bash
# System packages the local stack runs on (Debian 12 / Ubuntu): PostgreSQL server binaries
# for a private cluster, Ceph (monitor, OSD, RADOS Gateway) for S3 with bucket
# notifications, clamd for virus scans, Prometheus (server and promtool) for
# `auxip up --with-monitoring` and the rules' tests, and the build tools. Does nothing when
# all are installed; otherwise one `apt-get update`, then one install. Non-interactive.
set -euo pipefail

packages=(
  postgresql postgresql-contrib
  radosgw ceph-mon ceph-osd ceph-common
  clamav clamav-daemon
  prometheus
  uuid-runtime curl make python3-venv
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "install-system-deps: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/dev/null

# Debian's prometheus package starts its own service on install (port 9090, a tsdb under
# /var/lib): the stack runs its own instance (own config and port), so a service this script
# just installed is stopped and kept from starting at boot. One installed before is left
# alone.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    "${as_root[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    "${as_root[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    "${as_root[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi
