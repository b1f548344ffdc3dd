"""What a deploy and a rollback share: bench commands run as child processes (no shell), each step
timed and logged on its Deployment, the site closed (maintenance on, scheduler paused) and put back
exactly as it was whatever happens, and one change of a bench's code at a time.

A process killed outright cannot put anything back: while the site is closed a small file beside it
says which Deployment closed it, at which step, and what the flags were. The next deploy, rollback or
preflight finds it, puts the flags back and marks that Deployment Failed.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import frappe
from filelock import FileLock, Timeout
from frappe.installer import update_site_config
from frappe.utils import get_bench_path, now_datetime

from deploy_manager.core import environment

FLAGS = ("maintenance_mode", "pause_scheduler")
OUTPUT_KEPT = 1500


class CommandFailed(RuntimeError):
	"""A child process that exited non-zero: its last line says why, `output` keeps the tail."""

	def __init__(self, message: str, output: str = ""):
		super().__init__(message)
		self.output = output


class Interrupted(BaseException):
	"""SIGTERM while the site is closed: unwinds like Ctrl-C, so the flags go back."""


def repo(app: str) -> Path:
	return Path(frappe.get_app_path(app)).parent


class Steps:
	"""Runs the steps of one Deployment (`doc`, already inserted) and keeps its log."""

	def __init__(self, doc):
		self.doc = doc
		self.current = ""

	def step(self, title: str, fn):
		self.current = title
		_closed_note_step(title)
		started = time.monotonic()
		output = fn()
		took = time.monotonic() - started
		text = output if isinstance(output, str) else ""
		self.doc.add_log(
			f"{title}: done in {took:.1f}s" + (f"\n{text[-OUTPUT_KEPT:]}" if text.strip() else "")
		)
		self.doc.save(ignore_permissions=True)
		frappe.db.commit()
		return output

	def record_failure(self, reason: str, error: BaseException | None = None, more: str = ""):
		"""Store the failure, with the failed command's output; when the database is what failed,
		connect again once and retry. The reason is printed either way."""
		for attempt in range(2):
			try:
				if attempt:
					frappe.db.close()
					frappe.connect(site=frappe.local.site)
				self.doc.reload()
				self.doc.status, self.doc.finished_at, self.doc.failure_reason = (
					"Failed",
					now_datetime(),
					reason,
				)
				if output := getattr(error, "output", ""):
					self.doc.add_log(f"{self.current} output:\n{output}")
				self.doc.add_log(reason + (f"\n{more}" if more else ""))
				self.doc.save(ignore_permissions=True)
				frappe.db.commit()
				return
			except Exception:
				self.doc.failure_reason = reason


@contextlib.contextmanager
def closed_site(deployment: str):
	"""Maintenance on and the scheduler paused inside; both put back exactly as they were (absent keys
	removed) on the way out, however it is left: an exception, Ctrl-C or SIGTERM. A site this process
	closed earlier (a bench-wide deploy closes every site first) is taken over as it is."""
	with interruptible():
		try:
			note = _read_closed_note()
			if note and note.get("pid") == os.getpid():
				_write_closed_note({**note, "deployment": deployment})
			else:
				close(deployment)
			yield
		finally:
			reopen()


def close(deployment: str):
	"""Maintenance on, scheduler paused; what they were goes into the closed-site note first. A note
	left by another process (its pid taken by a new process since) keeps its flags: they are the
	ones from before that process closed the site."""
	# The site's own config, where update_site_config writes (common_site_config may hold them too).
	config = frappe.get_file_json(frappe.get_site_path("site_config.json"))
	earlier = _read_closed_note()
	flags = earlier["flags"] if earlier else {flag: config.get(flag) for flag in FLAGS}
	_write_closed_note({"deployment": deployment, "pid": os.getpid(), "flags": flags, "step": ""})
	for flag in FLAGS:
		update_site_config(flag, 1)


def reopen():
	"""Put back the flags close() saved, if this site is closed."""
	if note := _read_closed_note():
		put_back(note["flags"])
		_remove_closed_note()


@contextlib.contextmanager
def interruptible():
	"""Inside, SIGTERM raises Interrupted (in the main thread), so that finally blocks run; a hang-up
	is ignored, so that a dropped SSH session does not stop a migrate half-way."""
	handlers = _raise_on_signals()
	try:
		yield
	finally:
		for number, handler in handlers.items():
			signal.signal(number, handler)


def put_back(flags: dict):
	for flag, value in flags.items():
		update_site_config(flag, "None" if value is None else value)
	frappe.local.conf.update({flag: value for flag, value in flags.items()})


def reopen_abandoned() -> str | None:
	"""If a deploy or rollback died with the site closed, put its flags back and fail its Deployment;
	one that died after opening the site again (in its restart, say) is failed too. Returns what was
	done, to print."""
	said = []
	note = _read_closed_note()
	if note and not _alive(note.get("pid")):
		put_back(note["flags"])
		_remove_closed_note()
		name, step = note.get("deployment"), note.get("step") or "its first step"
		reason = (
			f"the process (pid {note.get('pid')}) ended during {step} without finishing: maintenance mode"
			" and the scheduler were put back as they were"
		)
		_fail_if_in_progress(name, f"{step} interrupted: {reason}")
		said.append(f"{name}: {reason}")
	for left in frappe.get_all(
		"Deployment",
		filters={
			"status": "In Progress",
			"source": ("in", ("Deploy Command", "Rollback")),
			"host": environment.hostname(),
		},
		fields=["name", "pid"],
	):
		if not _alive(left.pid):
			reason = f"the process (pid {left.pid}) ended without finishing"
			_fail_if_in_progress(left.name, reason)
			said.append(f"{left.name}: {reason}")
	return "; ".join(said) or None


def _fail_if_in_progress(name: str | None, reason: str):
	if name and frappe.db.get_value("Deployment", name, "status") == "In Progress":
		Steps(frappe.get_doc("Deployment", name)).record_failure(reason)


def flags_now() -> str:
	"""For a failure message: whether maintenance mode and the scheduler are back as they were."""
	if _read_closed_note() is None:
		return "Maintenance mode and the scheduler are as they were."
	return (
		"Maintenance mode and the scheduler could NOT be put back: what they were is in"
		f" {_closed_note_path()}; the next deploy, rollback or preflight puts them back."
	)


def _alive(pid) -> bool:
	try:
		os.kill(int(pid), 0)
		return True
	except (TypeError, ValueError, ProcessLookupError):
		return False
	except PermissionError:
		return True


def _closed_note_path() -> str:
	return os.path.abspath(frappe.get_site_path("locks", "deploy_manager_closed.json"))


def _write_closed_note(note: dict):
	path = _closed_note_path()
	os.makedirs(os.path.dirname(path), exist_ok=True)
	with open(path + ".tmp", "w") as f:
		json.dump(note, f)
	os.replace(path + ".tmp", path)


def _closed_note_step(step: str):
	if note := _read_closed_note():
		_write_closed_note({**note, "step": step})


def _read_closed_note() -> dict | None:
	try:
		with open(_closed_note_path()) as f:
			return json.load(f)
	except (FileNotFoundError, ValueError):
		return None


def _remove_closed_note():
	with contextlib.suppress(FileNotFoundError):
		os.remove(_closed_note_path())


def _raise_on_signals() -> dict:
	"""SIGTERM raises Interrupted, SIGHUP is ignored (main thread only); returns the handlers replaced."""
	if threading.current_thread() is not threading.main_thread():
		return {}

	def interrupt(number, frame):
		raise Interrupted(f"stopped by signal {signal.Signals(number).name}")

	return {
		signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt),
		signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_IGN),
	}


@contextlib.contextmanager
def one_change_at_a_time(what: str, site: str | None = None):
	"""One deploy or rollback per bench: both move the code every site runs. A second one is
	refused with the name of the first."""
	site = site or frappe.local.site
	sites = os.path.join(get_bench_path(), "sites")
	holder = os.path.join(sites, "deploy_manager_change.json")
	# A little patience: running_change() holds the lock for an instant when it looks.
	lock = FileLock(os.path.join(sites, "deploy_manager_change.lock"), timeout=2)
	try:
		lock.acquire()
	except Timeout:
		raise ValueError(
			f"{running_change() or 'another deploy or rollback'} is running on this bench"
		) from None

	def claim(what: str):
		"""Say what holds the lock (once the Deployment has a name, its name)."""
		with open(holder, "w") as f:
			json.dump({"what": what, "site": site, "pid": os.getpid()}, f)

	try:
		claim(what)
		yield claim
	finally:
		with contextlib.suppress(FileNotFoundError):
			os.remove(holder)
		lock.release()


def running_change() -> str | None:
	"""What holds the bench's change lock now, if anything: "DEP-... on SITE (pid N)"."""
	sites = os.path.join(get_bench_path(), "sites")
	lock = FileLock(os.path.join(sites, "deploy_manager_change.lock"), timeout=0)
	try:
		lock.acquire()
		lock.release()
		return None
	except Timeout:
		try:
			with open(os.path.join(sites, "deploy_manager_change.json")) as f:
				held = json.load(f)
			return f"{held['what']} on {held['site']} (pid {held['pid']})"
		except (FileNotFoundError, ValueError, KeyError):
			return "another deploy or rollback"


@contextlib.contextmanager
def on_site(site: str):
	"""Frappe set up for `site` inside: a bench-wide deploy goes from site to site."""
	frappe.init(site=site)
	frappe.connect()
	try:
		yield
	finally:
		frappe.destroy()


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
