#!/bin/sh
# Install the system tools the integration tests drive, when missing.
# Runs `apt-get update` at most once, then installs what is absent.
set -eu
need=""
for pair in curl:curl tinyproxy:tinyproxy haproxy:haproxy wrk:wrk make:make openssl:openssl ping:iputils-ping ip:iproute2 unshare:util-linux setpriv:util-linux iperf3:iperf3 avahi-daemon:avahi-daemon avahi-browse:avahi-utils dbus-daemon:dbus chromium:chromium h2load:nghttp2-client; do
    tool=${pair%%:*}; pkg=${pair#*:}
    command -v "$tool" >/dev/null 2>&1 || need="$need $pkg"
done
[ -z "$need" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing:$need (install them with your package manager)" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system-deps: installing$need" >&2
$SUDO apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need >/dev/null
