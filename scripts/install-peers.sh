#!/bin/sh
# Installs the tools the benchmark compares Lockstep with (`npm run bench -- --vs`),
# from the distribution's packages: rsync, Unison, Syncthing, lsyncd.
# Debian/Ubuntu, as root; safe to run again (apt-get install is idempotent);
# waits up to 10 minutes for another apt or dpkg run to finish.
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers.sh: run as root (e.g. sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in rsync unison syncthing lsyncd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-peers.sh: rsync unison syncthing lsyncd already installed"
  exit 0
fi
apt-get -o DPkg::Lock::Timeout=600 update
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing
