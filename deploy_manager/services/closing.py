"""Closing a site for a deploy or rollback (maintenance on, scheduler paused) and opening it again
exactly as it was, whatever happens: an exception, Ctrl-C or SIGTERM.

A process killed outright cannot put anything back: while the site is closed a small file beside it
says which Deployment closed it, at which step, and what the flags were. The next deploy, rollback or
preflight finds it, puts the flags back and marks that Deployment Failed.
"""

import contextlib
import json
import os
import signal
import threading

import frappe
from frappe.installer import update_site_config

from deploy_manager.core import environment
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle

FLAGS = ("maintenance_mode", "pause_scheduler")


class Interrupted(BaseException):
	"""SIGTERM while the site is closed: unwinds like Ctrl-C, so the flags go back."""


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
			"status": lifecycle.IN_PROGRESS,
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
	if name and frappe.db.get_value("Deployment", name, "status") == lifecycle.IN_PROGRESS:
		doc = frappe.get_doc("Deployment", name)
		doc.fail(reason, log=reason)
		doc.save(ignore_permissions=True)
		frappe.db.commit()


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


def note_step(step: str):
	"""Which step the process that closed the site is in, for whoever finds it dead."""
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
