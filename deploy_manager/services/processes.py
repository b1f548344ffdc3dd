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

from deploy_manager.core import gitrepo, plan
from deploy_manager.services import closing
from deploy_manager.services.site_state import repo

OUTPUT_KEPT = 1500


class CommandFailed(RuntimeError):
	"""A child process that exited non-zero: its last line says why, `output` keeps the tail."""

	def __init__(self, message: str, output: str = ""):
		super().__init__(message)
		self.output = output


# When nothing restarts the bench, the deploy says so instead of verifying the code still running.
NOTHING_RESTARTS = (
	"neither supervisor nor systemd runs this bench: restart its web server and workers by hand"
)


def restart_command() -> list[str]:
	"""This bench's restart as bench does it (empty when no process manager runs the bench)."""
	bench = Path(get_bench_path())
	how = ""
	if (bench / "config" / "supervisor.conf").exists() and shutil.which("supervisorctl"):
		how = "supervisor"
	elif (bench / "config" / "systemd").is_dir() and shutil.which("systemctl"):
		how = "systemd"
	custom = frappe.get_conf().get("supervisor_restart_cmd") or ""
	return plan.restart_command(how, bench.name, custom, sudo=how == "systemd" or _refused(how))


def restart() -> str:
	command = restart_command()
	if not command:
		raise RuntimeError(NOTHING_RESTARTS)
	try:
		return run(command)
	except CommandFailed as e:
		# supervisorctl exits 7 when a program it was to stop was not running, or one did not start
		# (a scheduler finding another holding its lock): the new code answers once the web server
		# runs; what else is down, the verification's checks judge.
		states = _states([arg for arg in command if arg.endswith(":")])
		web = {name: state for name, state in states.items() if name.split(":")[0].endswith("-web")}
		if web and all(state in ("RUNNING", "STARTING") for state in web.values()):
			down = sorted(name for name, state in states.items() if state not in ("RUNNING", "STARTING"))
			return e.output + (f"\nnot running after the restart: {', '.join(down)}" if down else "")
		raise


def _states(groups: list[str]) -> dict[str, str]:
	"""program -> supervisor state, for the programs of `groups`."""
	if not groups:
		return {}
	try:
		status = subprocess.run(
			["supervisorctl", "status", *groups], capture_output=True, text=True, timeout=30
		)
	except (OSError, subprocess.TimeoutExpired):
		return {}
	return {line.split()[0]: line.split()[1] for line in status.stdout.splitlines() if len(line.split()) > 1}


def _refused(how: str) -> bool:
	"""Whether supervisor refuses this user (its socket not theirs, as `bench setup production`
	leaves it): then, as bench does, through sudo."""
	if how != "supervisor":
		return False
	try:
		status = subprocess.run(["supervisorctl", "status"], capture_output=True, text=True, timeout=10)
	except (OSError, subprocess.TimeoutExpired):
		return False
	return "Permission denied" in status.stdout + status.stderr


def install(app: str) -> str:
	path = repo(app)
	if not any((path / name).exists() for name in ("pyproject.toml", "setup.py")):
		return f"{app} has no package metadata: nothing to install"
	return run([str(Path(sys.executable).parent / "pip"), "install", "--quiet", "-e", str(path)])


def node_packages(app: str, before: str, after: str) -> str:
	"""`yarn install --check-files` in the app, as `bench update` runs it, when its package.json or
	yarn.lock differs between the two commits: `bench build` would fail on a missing package."""
	path = repo(app)
	if not gitrepo.git(path, "diff", "--name-only", before, after, "--", "package.json", "yarn.lock"):
		return f"{app}: package.json and yarn.lock unchanged: nothing to install"
	return run(["yarn", "install", "--check-files"], cwd=str(path))


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
	# It outlives this process if this one is killed: while it runs, the site it closed stays closed.
	closing.note_child(child.pid)
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
