"""Child processes a deploy or rollback runs: bench's own commands, pip and restarts, with no shell,
each in its own process group (a timeout or an interruption ends the whole pipeline it started), and
failures named by their last line."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import frappe
from frappe.utils import get_bench_path

from deploy_manager.services.site_state import repo

OUTPUT_KEPT = 1500


class CommandFailed(RuntimeError):
	"""A child process that exited non-zero: its last line says why, `output` keeps the tail."""

	def __init__(self, message: str, output: str = ""):
		super().__init__(message)
		self.output = output


def restarter() -> str:
	bench = Path(get_bench_path())
	if (bench / "config" / "supervisor.conf").exists() and shutil.which("supervisorctl"):
		return "supervisor"
	if (bench / "config" / "systemd").is_dir() and shutil.which("systemctl"):
		return "systemd"
	return ""


def restart() -> str:
	how = restarter()
	if how == "supervisor":
		# bench's own groups for this bench: never its Redis (the queue's jobs) nor other benches.
		name = Path(get_bench_path()).name
		return run(["supervisorctl", "restart", f"{name}-web:", f"{name}-workers:"])
	if how == "systemd":
		return run(["systemctl", "restart", "frappe-bench-web", "frappe-bench-workers"])
	message = "neither supervisor nor systemd runs this bench: restart its web server and workers by hand"
	print(message, file=sys.stderr)
	return message


def install(app: str) -> str:
	path = repo(app)
	if not any((path / name).exists() for name in ("pyproject.toml", "setup.py")):
		return f"{app} has no package metadata: nothing to install"
	return run([str(Path(sys.executable).parent / "pip"), "install", "--quiet", "-e", str(path)])


def build(app: str) -> str:
	if not (Path(frappe.get_app_path(app)) / "public").is_dir():
		return f"{app} has no public folder: nothing to build"
	return bench("build", "--app", app, site=False)


def bench(*args: str, site: bool = True, env: dict | None = None) -> str:
	"""A bench command in a child process, as bench runs it."""
	command = [sys.executable, "-m", "frappe.utils.bench_helper", "frappe"]
	command += ["--site", frappe.local.site] if site else []
	return run([*command, *args], cwd=os.path.join(get_bench_path(), "sites"), env=env)


def run(command: list[str], cwd: str | None = None, timeout: float = 3600, env: dict | None = None) -> str:
	child = subprocess.Popen(
		command,
		cwd=cwd,
		stdin=subprocess.DEVNULL,  # nothing may wait for a prompt
		stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT,
		text=True,
		env={**os.environ, **(env or {})},
		# Its own process group: a timeout ends the whole pipeline it starts (gzip, mariadb), not just it.
		start_new_session=True,
	)
	try:
		output, _ = child.communicate(timeout=timeout)
	except BaseException as e:
		# A timeout, or this process being interrupted: the child must not go on alone. Asked to stop
		# first (a migrate's Frappe then rolls back its transaction), killed if it does not.
		os.killpg(child.pid, signal.SIGKILL if isinstance(e, subprocess.TimeoutExpired) else signal.SIGTERM)
		try:
			child.communicate(timeout=30)
		except subprocess.TimeoutExpired:
			os.killpg(child.pid, signal.SIGKILL)
			child.communicate()
		if isinstance(e, subprocess.TimeoutExpired):
			raise RuntimeError(
				f"`{' '.join(command[-3:])}` did not finish within {timeout:g}s and was stopped"
			) from None
		raise
	output = output.strip()
	if child.returncode:
		last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
		raise CommandFailed(
			f"`{' '.join(command[-3:])}` exited {child.returncode}: {last}", output[-OUTPUT_KEPT:]
		)
	return output
