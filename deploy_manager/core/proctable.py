"""The machine's processes as Linux's /proc shows them: who is whose child, which process group each
is in, and when each started (pids are reused: a pid and its start time name one process)."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Process:
	pid: int
	parent: int
	group: int
	# Clock ticks after boot: with the pid, the identity of a process.
	started: int
	zombie: bool


def read(pid: int) -> Process | None:
	try:
		with open(f"/proc/{pid}/stat") as f:
			# "pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22nd)": comm may hold
			# spaces and parentheses, so the fields are counted from the last ")".
			fields = f.read().rpartition(")")[2].split()
		return Process(pid, int(fields[1]), int(fields[2]), int(fields[19]), fields[0] == "Z")
	except (OSError, IndexError, ValueError):
		return None  # ended meanwhile


def every() -> dict[int, Process]:
	found = {}
	for entry in os.listdir("/proc"):
		if entry.isdigit() and (process := read(int(entry))):
			found[process.pid] = process
	return found


def family(root: int, processes: dict[int, Process] | None = None) -> set[int]:
	"""`root` and all its descendants."""
	processes = processes or every()
	found, grown = {root}, True
	while grown:
		more = {p.pid for p in processes.values() if p.parent in found} - found
		found |= more
		grown = bool(more)
	return found


def started(pid: int) -> int | None:
	process = read(pid)
	return process.started if process else None


def living(owner: tuple[int, int | None], groups: list[tuple[int, int | None]]) -> list[int]:
	"""The live processes of `owner` (pid, start time) and of process `groups` (leader pid, leader's
	start time): the owner itself if it still runs, and every process still in one of those groups.
	Linux never hands out a pid still in use as a group id, so a group whose leader's pid now names
	a process that started at another time is gone."""
	processes = every()
	alive = []
	pid, start = owner
	if (p := processes.get(pid)) and not p.zombie and start in (None, p.started):
		alive.append(pid)
	for leader, start in groups:
		if (p := processes.get(leader)) and start is not None and p.started != start:
			continue
		alive += [
			p.pid for p in processes.values() if p.group == leader and not p.zombie and p.pid not in alive
		]
	return sorted(alive)
