#!/usr/bin/env bash
# Builds a Debian 13 (trixie) root with GIMP 3 for the GIMP plug-in tests (Debian 12 has no
# GIMP 3). Needs root and debootstrap; about 1.3 GB and 5 minutes, so it is kept between runs.
#   make_gimp3_root.sh [DIR]    (default /var/cache/spritefit/gimp3-trixie)
set -euo pipefail
root=${1:-/var/cache/spritefit/gimp3-trixie}
if [ -x "$root/usr/bin/gimp-console-3.0" ]; then
  echo "GIMP 3 root ready: $root"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap >/dev/null
rm -rf "$root.partial"
mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase trixie "$root.partial" http://deb.debian.org/debian >/dev/null
chroot "$root.partial" apt-get update -q >/dev/null
chroot "$root.partial" apt-get install -y -q --no-install-recommends \
  gimp python3-gi gir1.2-gimp-3.0 >/dev/null
chroot "$root.partial" apt-get clean
rm -rf "$root"
mv "$root.partial" "$root"
echo "GIMP 3 root ready: $root"
