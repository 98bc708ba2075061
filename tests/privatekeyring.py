"""A session bus of its own with an unlocked gnome-keyring: a Secret Service that a test may lock
or take away, and that the benchmark fills, without touching anyone's real keyring.

The bus runs from a configuration with no service activation, so only the gnome-keyring started
here can answer as `org.freedesktop.secrets`, and `secret_service=False` gives a bus with no
Secret Service at all, as on a server. The keyring's files live under `directory`; the bus and
the keyring stop when the context ends (gnome-keyring leaves with its bus).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import TracebackType

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{listen}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
SECRETS = "org.freedesktop.secrets"
START_TIMEOUT = 10.0


class PrivateKeyring:
    """`with PrivateKeyring(tmp) as keyring:` then `keyring.env` for the processes that use it."""

    def __init__(self, directory: Path, *, secret_service: bool = True,
                 password: str = "private-keyring", listen: str = "") -> None:
        """`listen` is a D-Bus server address; by default a socket under `directory`."""
        self.directory = directory
        self.secret_service = secret_service
        self.listen = listen or f"unix:dir={directory / 'bus'}"
        self.password = password
        self.address = ""
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to find this bus."""
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def __enter__(self) -> PrivateKeyring:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _start(self) -> None:
        bus_dir = self.directory / "bus"
        data, runtime = self.directory / "data", self.directory / "run"
        for made in (bus_dir, data, runtime):
            made.mkdir(mode=0o700, parents=True)
        config = self.directory / "bus.conf"
        config.write_text(BUS_CONFIG.format(listen=self.listen))
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
             "--print-address=1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._processes.append(bus)
        assert bus.stdout is not None
        self.address = bus.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start")
        if not self.secret_service:
            return
        keyring = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own runtime directory: a second daemon sharing one would hand the password
            # to the first daemon's control socket and leave.
            env={**os.environ, **self.env, "XDG_DATA_HOME": str(data),
                 "XDG_RUNTIME_DIR": str(runtime), "HOME": str(self.directory)})
        self._processes.append(keyring)
        assert keyring.stdin is not None
        keyring.stdin.write(self.password.encode())
        keyring.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._owned(SECRETS):
            if keyring.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gnome-keyring-daemon did not start")
            time.sleep(0.05)

    def dbus_send(self, destination: str, path: str, method: str, *args: str) -> str:
        """`dbus-send --print-reply` on this bus; its output."""
        done = subprocess.run(
            ["dbus-send", "--session", "--print-reply", f"--dest={destination}", path, method,
             *args],
            env={**os.environ, **self.env}, capture_output=True, timeout=20, check=True)
        return done.stdout.decode()

    def _owned(self, name: str) -> bool:
        reply = self.dbus_send("org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus.NameHasOwner", f"string:{name}")
        return "boolean true" in reply

    def lock(self) -> None:
        """Lock the default collection, as a screen lock or `Service.Lock` does."""
        reply = self.dbus_send(SECRETS, "/org/freedesktop/secrets",
                               "org.freedesktop.Secret.Service.ReadAlias", "string:default")
        collection = reply.split('object path "')[1].split('"')[0]
        self.dbus_send(SECRETS, "/org/freedesktop/secrets",
                       "org.freedesktop.Secret.Service.Lock", f"array:objpath:{collection}")

    def freeze(self) -> None:
        """Stop gnome-keyring-daemon with SIGSTOP: the bus still routes calls to it, and none
        is answered, as with a daemon that hangs."""
        import signal

        os.kill(self._processes[1].pid, signal.SIGSTOP)

    def thaw(self) -> None:
        import signal

        os.kill(self._processes[1].pid, signal.SIGCONT)

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        self._processes.clear()
