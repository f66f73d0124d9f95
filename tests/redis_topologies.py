"""Redis topologies on loopback for the tests: a primary + replica + three sentinels, and a
three-master cluster — real ``redis-server`` processes (the binary the suite already uses),
each on a free port in its own directory."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis

from dialer.store.embedded import find_redis_server, free_port, server_environment


class Node:
    """One redis-server (or sentinel) with the configuration lines given."""

    def __init__(
        self, root: Path, name: str, lines: list[str], *, sentinel: bool = False, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / ("sentinel.conf" if sentinel else "redis.conf")
        base = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}", "logfile node.log", "daemonize no"]
        self.conf.write_text("\n".join([*base, *lines, ""]))
        cmd = [find_redis_server(), str(self.conf)] + (["--sentinel"] if sentinel else [])
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=server_environment(),
        )
        self.client = redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)
        wait_for(lambda: self.client.ping(), f"{name} on {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
        with contextlib.suppress(Exception):
            self.client.close()

    def log(self) -> str:
        path = self.dir / "node.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def wait_for(check, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready in {timeout} s ({last})")


class SentinelSet:
    """A primary, a replica of it and three sentinels watching ``mymaster`` (quorum 2,
    down after 1 s): a SIGKILL of the primary promotes the replica in a few seconds."""

    MASTER = "mymaster"

    def __init__(self, root: Path) -> None:
        self.primary = Node(root, "primary", ["appendonly no", 'save ""'])
        self.replica = Node(
            root, "replica", ["appendonly no", 'save ""', f"replicaof 127.0.0.1 {self.primary.port}"]
        )
        wait_for(
            lambda: self.replica.client.info("replication").get("master_link_status") == "up", "replication"
        )
        self.sentinels = [
            Node(
                root,
                f"sentinel{i}",
                [
                    f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2",
                    f"sentinel down-after-milliseconds {self.MASTER} 1000",
                    f"sentinel failover-timeout {self.MASTER} 5000",
                    f"sentinel parallel-syncs {self.MASTER} 1",
                ],
                sentinel=True,
            )
            for i in range(3)
        ]
        for s in self.sentinels:
            wait_for(lambda s=s: self._known(s) == self.primary.port, "sentinel sees the primary")

    def _known(self, s: Node) -> int:
        addr = s.client.execute_command("SENTINEL", "get-master-addr-by-name", self.MASTER)
        return int(addr[1]) if addr else 0

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.MASTER}"

    def kill_primary_and_wait_for_failover(self, timeout: float = 30.0) -> float:
        """SIGKILL the primary; seconds until the sentinels name the replica primary."""
        t0 = time.monotonic()
        self.primary.kill()
        wait_for(
            lambda: all(self._known(s) == self.replica.port for s in self.sentinels), "failover", timeout
        )
        wait_for(
            lambda: self.replica.client.info("replication").get("role") == "master", "promotion", timeout
        )
        return time.monotonic() - t0

    def stop(self) -> None:
        for n in (*self.sentinels, self.replica, self.primary):
            n.stop()


def cluster_port() -> int:
    """A free port whose cluster bus (the port + 10,000) is free and below 65,536."""
    import socket

    for _ in range(200):
        port = free_port()
        if port > 55_000:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port
    for port in range(20_000, 30_000):  # the system hands out high ports: try low ones
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class Cluster:
    """Three masters (no replicas), the 16,384 slots spread by ``redis-cli --cluster create``."""

    def __init__(self, root: Path) -> None:
        lines = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            "cluster-node-timeout 2000",
            'save ""',
        ]
        self.nodes = [Node(root, f"node{i}", list(lines), port=cluster_port()) for i in range(3)]
        cli = Path(find_redis_server()).with_name("redis-cli")
        subprocess.run(
            [str(cli), "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes), "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            env=server_environment(),
        )
        for n in self.nodes:
            wait_for(
                lambda n=n: "cluster_state:ok" in n.client.execute_command("CLUSTER", "INFO"), "cluster ok"
            )

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
