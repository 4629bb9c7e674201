"""Which processes of a process group still run: read from /proc, zombies left out (a
zombie has ended; only its parent's wait is missing)."""

from __future__ import annotations

import re
from pathlib import Path

PID_LINE = re.compile(r"=== mminstruct .*: pid (\d+) \(process group (\d+)\)")


def live_members(pgid: int) -> list[int]:
    """Pids of the running (not zombie) processes in process group `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended while we looked
        fields = text.rpartition(")")[2].split()  # after "pid (comm)": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def server_groups(log: Path) -> list[int]:
    """The process groups of every server start a managed-server log records."""
    return [int(match[2]) for match in PID_LINE.finditer(log.read_text(errors="replace"))]


def leftovers(log: Path) -> dict[int, list[int]]:
    """Every server process group of `log` with processes still running, and their pids."""
    alive = {group: live_members(group) for group in server_groups(log)}
    return {group: pids for group, pids in alive.items() if pids}
