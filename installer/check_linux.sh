#!/bin/sh
# Acceptance check of the Linux artifacts that `make installer VARIANT=...` left in dist/:
#   1. extract the portable .tar.gz to a temporary folder, run its launcher with --selftest
#      offscreen with networking blocked (unshare -n: a network namespace with no interfaces);
#   2. dpkg -i the .deb, run /usr/bin/latent --selftest the same way, dpkg -r it.
# Needs root (dpkg, unshare). Usage: installer/check_linux.sh [cpu|cuda] [--no-deb]
set -eu
variant=${1:-cpu}
here=$(cd "$(dirname "$0")/.." && pwd)
dist="$here/dist"
tarball=$(ls "$dist"/latent-*-linux-*-"$variant".tar.gz | head -n 1)
pkg=latent; [ "$variant" = cuda ] && pkg=latent-cuda
deb=$(ls "$dist"/"$pkg"_*_amd64.deb | head -n 1)

offline() {  # run a command with networking blocked, offscreen, with an empty HOME, as $AS
    home=$(mktemp -d)
    chmod 777 "$home"
    rc=0
    if [ -n "${AS:-}" ]; then
        unshare -n runuser -u "$AS" -- env -i PATH=/usr/bin:/bin HOME="$home" QT_QPA_PLATFORM=offscreen \
            LANG=C.UTF-8 "$@" || rc=$?
    else
        unshare -n env -i PATH=/usr/bin:/bin HOME="$home" QT_QPA_PLATFORM=offscreen LANG=C.UTF-8 "$@" || rc=$?
    fi
    rm -rf "$home"
    return $rc
}

echo "== inside unshare -n: $(unshare -n ip -o link show 2>/dev/null | awk '{print $2, $9}' | tr '\n' ' ')"
# Even loopback is down in the new namespace: a connection cannot be made anywhere.
if unshare -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/9' 2>/dev/null; then
    echo "networking is NOT blocked by unshare -n here" >&2; exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== portable: $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
tar -xzf "$tarball" -C "$tmp"
launcher=$(ls "$tmp"/latent-*/latent)
offline "$launcher" --selftest

if [ "${2:-}" = "--no-deb" ]; then exit 0; fi
echo "== deb: $(basename "$deb") ($(du -h "$deb" | cut -f1))"
dpkg -i "$deb"
echo "installed: $(dpkg-query -W -f='${Package} ${Version} ${Installed-Size} KiB' "$pkg"); launcher $(command -v latent)"
# as an ordinary user: the installed files must be readable by everyone, not only root
AS=nobody offline latent --selftest
dpkg -r "$pkg"
test ! -e /opt/latent/latent && test ! -e /usr/bin/latent && echo "== removed: /opt/latent and /usr/bin/latent are gone"
