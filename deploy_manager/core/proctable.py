"""The machine's processes as Linux's /proc shows them: who is whose child, which process group each
is in, and when each started (pids are reused: a pid and its start time name one process)."""

import contextlib
import os
import re
import signal
import time
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


def command(pid: int, secrets: tuple[str, ...] = (), limit: int = 160) -> str:
	"""What a process runs, as its command line ("" once it has ended), fit to be logged: the values of
	options that carry secrets (`--password=`, mariadb's `-pSECRET`, `--passphrase`), `user:pass@` in
	URLs and each of `secrets` (a shell's `-c` line holds them all) replaced by ***."""
	try:
		with open(f"/proc/{pid}/cmdline", "rb") as f:
			text = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
	except OSError:
		return ""
	for secret in sorted(filter(None, secrets), key=len, reverse=True):
		text = text.replace(secret, "***")
	text = URL_PASSWORD.sub(r"\1***@", SECRET_OPTION.sub(r"\1***", text))
	return text if len(text) <= limit else text[: limit - 3] + "..."


# An option whose value is a secret, as mariadb, mariadb-dump, gpg and bench take them; a URL's password.
SECRET_OPTION = re.compile(
	r"((?:^|\s)--?(?:password|passphrase|pass|encryption-key|api-secret|token)[= ]|\s-p(?=\S))\S+"
)
URL_PASSWORD = re.compile(r"(://[^\s/:@]*:)[^\s/@]+@")


def end(groups: list[tuple[int, int | None]], wait: float = 10, secrets: tuple[str, ...] = ()) -> list[str]:
	"""End every live process of `groups` (as `living` reads them), each group whole: asked first
	(SIGTERM: a migrate's Frappe rolls back its transaction), killed if still there after `wait`
	seconds. Returns what was ended, each as "pid N (command)", `secrets` masked."""
	pids = living((0, None), groups)
	ended = [f"pid {pid} ({command(pid, secrets)})" for pid in pids]
	for number in (signal.SIGTERM, signal.SIGKILL):
		for group in {p.group for pid in living((0, None), groups) if (p := read(pid))}:
			with contextlib.suppress(ProcessLookupError, PermissionError):
				os.killpg(group, number)
		deadline = time.monotonic() + wait
		while living((0, None), groups) and time.monotonic() < deadline:
			time.sleep(0.1)
		if not living((0, None), groups):
			break
	return ended
