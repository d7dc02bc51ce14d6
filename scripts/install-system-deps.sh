#!/usr/bin/env bash
# System packages the local stack runs on (Debian 12 / Ubuntu): PostgreSQL server binaries
# for a private cluster, Ceph (monitor, OSD, RADOS Gateway) for S3 with bucket
# notifications, clamd for virus scans, and the build tools. Does nothing when all are
# installed; otherwise one `apt-get update`, then one install. Non-interactive.
set -euo pipefail

packages=(
  postgresql postgresql-contrib
  radosgw ceph-mon ceph-osd ceph-common
  clamav clamav-daemon
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
