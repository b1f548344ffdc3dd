"""Where this code runs: the platform and who is running it. Read from the process, not from frappe."""

import getpass
import os
import socket
from collections.abc import Mapping
from pathlib import Path

CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")


def detect_platform(
	bench: str | Path, environ: Mapping[str, str] = os.environ, markers: tuple[str, ...] = CONTAINER_MARKERS
) -> str:
	"""Bench when the bench itself says so: its framework is a git checkout, or supervisor or systemd
	run it. Dev containers, CI runners and many self-hosted benches live in containers and are such
	benches. Otherwise an image (frappe_docker's ship the apps without git) deployed by Kubernetes or
	a container runtime, when the process runs there."""
	bench = Path(bench)
	if any(
		(bench / path).exists() for path in ("apps/frappe/.git", "config/supervisor.conf", "config/systemd")
	):
		return "Bench"
	if environ.get("KUBERNETES_SERVICE_HOST"):
		return "Kubernetes"
	if any(Path(marker).exists() for marker in markers):
		return "Docker"
	return "Bench"


def hostname() -> str:
	return socket.gethostname()


def operator() -> str:
	"""`user@host` of the process, what an operator recognises in a log."""
	try:
		user = getpass.getuser()
	except (KeyError, OSError):
		user = str(os.getuid())
	return f"{user}@{hostname()}"


def bench_update_started(pid: int | None = None, proc: str = "/proc") -> float | None:
	"""When the `bench update` this process runs under began (epoch seconds), or None when it runs under
	none. `bench update` closes every site (maintenance on, scheduler paused) before it backs them up,
	so its backups hold everything up to the migrate it then runs."""
	pid = os.getppid() if pid is None else pid
	while pid > 1:
		try:
			cmdline = Path(f"{proc}/{pid}/cmdline").read_bytes().decode(errors="replace")
			stat = Path(f"{proc}/{pid}/stat").read_text()
		except OSError:
			return None
		argv = [Path(arg).name for arg in cmdline.split("\0") if arg]
		# Fields after the command name, which is in parentheses and may hold spaces.
		fields = stat[stat.rindex(")") + 2 :].split()
		if any(name == "bench" and argv[n + 1 : n + 2] == ["update"] for n, name in enumerate(argv)):
			return _boot_time(proc) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
		pid = int(fields[1])
	return None


def _boot_time(proc: str) -> float:
	for line in Path(f"{proc}/stat").read_text().splitlines():
		if line.startswith("btime "):
			return float(line.split()[1])
	raise ValueError("no boot time in /proc/stat")
