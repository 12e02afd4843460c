"""An ``ssh://`` engine through the ssh program, as the docker CLI reaches one: every
connection is ``ssh [-l USER] [-p PORT] HOST docker system dial-stdio``.

docker-py's own ssh transport needs paramiko even when it shells out to ssh, and dockyard
does not depend on paramiko. So the engine layer talks to a private unix socket instead,
and each connection to it gets its own ssh process whose standard input and output are that
connection: no byte passes through Python, and everything that works on a local socket
(streams, attach, exec, cancelling a build) works the same over ssh.

ssh runs in a session of its own, with ``BatchMode``: it never prompts (use ssh-agent or a
key without a passphrase), and Ctrl-C reaches dockyard, not the connections it is closing.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import DockyardError


class Relay:
    """A unix socket in a private directory, relayed to one ssh:// engine."""

    def __init__(self, address: str, connect_timeout: float) -> None:
        parts = urlsplit(address)
        if not parts.hostname:
            raise DockyardError(f"{address}: expected ssh://[USER@]HOST[:PORT]")
        self.address = address
        self.command = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(connect_timeout))}"]
        if parts.username:
            self.command += ["-l", parts.username]
        if parts.port:
            self.command += ["-p", str(parts.port)]
        self.command += ["--", parts.hostname, "docker system dial-stdio"]
        self.directory = Path(tempfile.mkdtemp(prefix="dockyard-ssh-"))  # 0700: ours alone
        self.path = str(self.directory / "engine.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._changed = threading.Condition()
        self._running = 0
        self._error: str | None = None
        threading.Thread(target=self._serve, name=f"ssh relay {address}", daemon=True).start()
        atexit.register(self.close)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(connection,), daemon=True).start()

    def _relay(self, connection: socket.socket) -> None:
        with self._changed:
            self._running += 1
        error = None
        try:
            with connection:  # the ssh process holds its own copy of it
                process = subprocess.Popen(self.command, stdin=connection, stdout=connection,
                                           stderr=subprocess.PIPE, start_new_session=True)
            said = process.stderr.read().decode("utf-8", "replace")
            process.stderr.close()
            if process.wait() != 0:
                lines = [line.strip() for line in said.splitlines() if line.strip()]
                error = lines[-1] if lines else f"ssh exited with status {process.returncode}"
        except OSError as e:
            error = f"cannot run ssh: {e.strerror or e}"
        finally:
            with self._changed:
                self._running -= 1
                if error:
                    self._error = error
                self._changed.notify_all()

    def failure(self, wait: float = 5.0) -> str | None:
        """What ssh last said when it failed, once the connections that were open have ended
        (a refused connection ends at once; this waits at most ``wait`` seconds)."""
        deadline = time.monotonic() + wait
        with self._changed:
            while self._running and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            return self._error

    def close(self) -> None:
        self._listener.close()
        shutil.rmtree(self.directory, ignore_errors=True)


_relays: dict[str, Relay] = {}
_lock = threading.Lock()


def relay(address: str, connect_timeout: float) -> Relay:
    """The relay of this ssh:// address, started on first use (one per address and process)."""
    with _lock:
        if address not in _relays:
            _relays[address] = Relay(address, connect_timeout)
        return _relays[address]


def failure(address: str) -> str | None:
    """What ssh said when it last failed to reach ``address``, if it did."""
    found = _relays.get(address)
    return found.failure() if found else None
