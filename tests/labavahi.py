# -*- test-case-name: tests.lab.test_mdns -*-
"""
avahi-daemon, the mDNS responder of most Linux systems, in a lab host:
L{avahiCommand} is the command line that runs a private D-Bus system bus
and avahi-daemon (host name C{avahilab}, the host's C{eth0} only), runs a
shell script against them (C{avahi-browse ...}), and stops both.

Everything it needs of the file system stays private: it runs in a mount
namespace of its own (C{unshare -m}) with a tmpfs over C{/run} (for
the bus's socket and avahi's pid file and socket), and the configuration
files and logs are in the host's directory.  The machine's own D-Bus and
avahi are never used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_BUS = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"""

_AVAHI = """\
[server]
host-name=avahilab
allow-interfaces=eth0
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-workstation=no
publish-hinfo=no
"""

# Starts the bus and the daemon, waits (bounded) until avahi answers on
# the bus, runs the commands, stops both.
_SCRIPT = """\
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/avahi-daemon /run/dbus
dbus-daemon --config-file={directory}/bus.conf --nofork --nopidfile >{directory}/dbus.log 2>&1 &
BUS=$!
for i in $(seq 100); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
avahi-daemon -f {directory}/avahi.conf --no-drop-root --no-chroot --no-rlimits \
    >{directory}/avahi.log 2>&1 &
AVAHI=$!
for i in $(seq 100); do avahi-browse -at >/dev/null 2>&1 && break; sleep 0.05; done
set +e
{commands}
status=$?
kill $AVAHI $BUS
wait
exit $status
"""


def avahiMissing() -> str | None:
    """
    Why avahi cannot run in a lab host here, or L{None} when it can.
    """
    for tool, package in (
        ("avahi-daemon", "avahi-daemon"),
        ("avahi-browse", "avahi-utils"),
        ("dbus-daemon", "dbus"),
        ("unshare", "util-linux"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (tests/system-deps.sh installs {package})"
    return None


def avahiCommand(directory: Path, commands: str) -> list[str]:
    """
    The command line that runs C{commands} (shell) with avahi-daemon
    running, its files in C{directory}; its exit status is theirs.
    """
    (directory / "bus.conf").write_text(_BUS)
    (directory / "avahi.conf").write_text(_AVAHI)
    script = _SCRIPT.format(directory=directory, commands=commands)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
