"""CPU time and resident memory of a process tree, read from /proc.

A gateway with ``--workers N`` is a supervisor plus N worker processes, so every figure is summed
over the tree rooted at the process the benchmark started. CPU is utime+stime (clock ticks) from
``/proc/<pid>/stat``; memory is VmRSS from ``/proc/<pid>/status``. Reading /proc costs microseconds
and never touches the measured processes.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now (bounded by the process count)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo and len(out) < 4096:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb(pid: int) -> float:
    """VmRSS of one process in MiB; 0 when it is gone (or a zombie)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds per pid and RSS per pid of a tree at one moment."""

    cpu: dict[int, float]
    rss: dict[int, float]

    @classmethod
    def take(cls, root: int) -> Snapshot:
        pids = tree(root)
        return cls({p: cpu_seconds(p) for p in pids}, {p: rss_mb(p) for p in pids})

    @property
    def rss_total(self) -> float:
        return sum(self.rss.values())

    @property
    def rss_max(self) -> float:
        """The largest single process: the per-worker figure."""
        return max(self.rss.values(), default=0.0)


def cpu_between(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds the tree used between two snapshots (processes present in ``after``)."""
    return sum(max(0.0, c - before.cpu.get(p, 0.0)) for p, c in after.cpu.items())


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (from the first line of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / _TICK


def children_cpu_seconds() -> float:
    """CPU of this process's waited-for children: the load tool's cost, once it has exited."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
