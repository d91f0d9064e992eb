"""Debian's HAProxy in front of the replicas, running the shipped deploy/haproxy/haproxy.cfg.

The shipped file is rewritten only where a loopback test must differ: its own ``global`` (with a
stats socket; the log still goes to standard output, here a file), no Docker ``resolvers``,
loopback ``bind`` addresses, one static ``server`` line per replica instead of the DNS
``server-template``, and a shorter health check interval. Everything else (health checks,
retries, timeouts, the log format) is what a deployment runs. The access log (one line per
request, written when it ends) tells which replica served which request id and how it ended;
the stats socket gives each replica's state and the requests it has open.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.topology.replica import listening_port

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"

# %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq rid=... grid=...
_LOG_LINE = re.compile(
    r"\[(?P<accepted>[^\]]+)\] \S+ (?P<backend>\S+)/(?P<server>\S+) "
    r"(?:-?\d+/){4}(?P<ta>-?\d+) (?P<status>-?\d+) "
    r"(?P<bytes>\d+) (?P<term>\S{4}) (?:\d+/){4}(?P<retries>\+?\d+) \d+/\d+ "
    r"rid=(?P<rid>\S*) grid=(?P<grid>\S*)")


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy",) if Path(p).is_file()), None)


@dataclass(frozen=True)
class LogEntry:
    """One request as HAProxy saw it. ``term`` is its termination state (``----`` normal; first
    letter ``S``: the server aborted or refused, ``C``: the client aborted, ...)."""

    rid: str
    server: str
    status: int
    term: str
    retries: str  # "+N": redispatched to this server after N failed attempts
    total_ms: int
    accepted: float  # unix time the request arrived, to the millisecond


@dataclass(frozen=True)
class ServerStat:
    status: str  # UP, DOWN, MAINT, "UP 1/2", ...
    current: int  # requests open on this server now (scur)
    total: int  # requests sent to it so far (stot)


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(header, body lines) per section; comments and blank lines dropped."""
    sections: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            sections.append((line, []))
        elif sections:
            sections[-1][1].append(line.strip())
    return sections


def loopback_config(shipped: str, *, workdir: Path, api_port: int, stats_port: int,
                    servers: dict[str, int], check_inter_ms: int) -> str:
    """The shipped config, adapted to loopback replicas (see the module docstring)."""
    out = ["global",
           "    log stdout format raw local0 info",
           f"    stats socket {workdir / 'admin.sock'} mode 600 level admin",
           "    maxconn 4000"]
    binds = iter([api_port, stats_port])
    for header, body in _sections(shipped):
        kind = header.split()[0]
        if kind in ("global", "resolvers"):
            continue
        out.append(header)
        for line in body:
            if line.startswith("bind "):
                out.append(f"    bind 127.0.0.1:{next(binds)}")
            elif line.startswith("default-server "):
                out.append("    " + re.sub(r"\binter \S+", f"inter {check_inter_ms}", line))
            elif line.startswith("server-template "):
                out += [f"    server {name} 127.0.0.1:{port} check"
                        for name, port in servers.items()]
            else:
                out.append(f"    {line}")
    return "\n".join(out) + "\n"


class HAProxy:
    """``haproxy -db`` (foreground) on a loopback port; its standard output, the access log, goes
    to ``haproxy.out`` (a regular file: writes never block, so no line is dropped)."""

    def __init__(self, workdir: Path, servers: dict[str, int], *, check_inter_ms: int = 300
                 ) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise FileNotFoundError("haproxy is not installed (tests/prepare.sh installs "
                                    "Debian's package when run as root)")
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = listening_port()
        self.stats_port = listening_port()
        self.servers = dict(servers)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(loopback_config(
            SHIPPED.read_text(), workdir=workdir, api_port=self.port, stats_port=self.stats_port,
            servers=self.servers, check_inter_ms=check_inter_ms))
        self.output = workdir / "haproxy.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self) -> None:
        """``haproxy -c``: the rewritten config must be valid, like the shipped one."""
        proc = subprocess.run([self.binary, "-c", "-f", str(self.config)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"haproxy -c failed:\n{proc.stdout}{proc.stderr}")

    def start(self, timeout_s: float = 20) -> None:
        self.check()
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.output.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                self.stats()
                return
            time.sleep(0.05)
        raise RuntimeError("haproxy did not open its stats socket")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # --- runtime API ----------------------------------------------------------------------------

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.workdir / "admin.sock"))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, ServerStat]:
        """Each replica's state and open requests, from ``show stat``."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        col = {name: i for i, name in enumerate(header)}
        out: dict[str, ServerStat] = {}
        for row in (line.split(",") for line in lines[1:] if line):
            if row[col["svname"]] in self.servers:
                out[row[col["svname"]]] = ServerStat(row[col["status"]], int(row[col["scur"]]),
                                                     int(row[col["stot"]]))
        return out

    def info(self) -> dict[str, str]:
        """``show info``: process-wide counters (``DroppedLogs``, ``CumReq``, ...)."""
        pairs = (line.split(":", 1) for line in self.command("show info").splitlines()
                 if ":" in line)
        return {k.strip(): v.strip() for k, v in pairs}

    def wait_status(self, server: str, status: str, timeout_s: float = 30) -> float:
        """Seconds until ``server``'s health state starts with ``status`` (UP / DOWN)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if self.stats()[server].status.startswith(status):
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{server} not {status} after {timeout_s}s: {self.stats()}")

    # --- the access log -------------------------------------------------------------------------

    def log(self) -> list[LogEntry]:
        """Every request logged so far (a request is logged when it ends)."""
        entries = []
        for line in self.output.read_text(errors="replace").splitlines():
            m = _LOG_LINE.search(line)
            if m:
                accepted = datetime.strptime(m["accepted"], "%d/%b/%Y:%H:%M:%S.%f").astimezone()
                entries.append(LogEntry(m["rid"], m["server"], int(m["status"]), m["term"],
                                        m["retries"], int(m["ta"]), accepted.timestamp()))
        return entries
