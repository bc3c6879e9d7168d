#!/bin/sh
# Latent launcher: runs the application folder next to this script (portable .tar.gz) or
# under /opt/latent (.deb). Arguments are passed through: `latent FILE`, `latent --selftest`,
# `latent engine info FILE`.
self=$(readlink -f "$0")
here=$(dirname "$self")
if [ -x "$here/app/latent" ]; then
    exec "$here/app/latent" "$@"
fi
exec /opt/latent/latent "$@"
