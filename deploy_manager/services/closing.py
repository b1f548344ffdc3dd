"""Closing a site for a deploy or rollback (maintenance on, scheduler paused) and opening it again
exactly as it was, whatever happens: an exception, Ctrl-C or SIGTERM.

A process killed outright cannot put anything back: while the site is closed a small file beside it
says which Deployment closed it, at which step, what the flags were, and which processes are its own
(itself, and the child processes it started in sessions of their own, which outlive it: a `bench
restore` goes on writing). While any of them runs, nothing reopens the site or starts another change,
and each command says so. Once they have all ended, the next deploy, rollback, preflight or status
puts back the records a killed rollback kept aside, then the flags, and marks that Deployment Failed.
"""

import contextlib
import json
import os
import signal
import threading

import frappe
from frappe.installer import update_site_config
from frappe.utils import get_bench_path, get_sites

from deploy_manager.core import environment, proctable
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import history, site_state

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
			note = read_closed_note()
			if _mine(note):
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
	earlier = read_closed_note()
	flags = earlier["flags"] if earlier else {flag: config.get(flag) for flag in FLAGS}
	pid = os.getpid()
	_write_closed_note(
		{
			"deployment": deployment,
			"pid": pid,
			"started": proctable.started(pid),
			"host": environment.hostname(),
			"children": [],
			"flags": flags,
			"step": "",
		}
	)
	for flag in FLAGS:
		update_site_config(flag, 1)


def reopen():
	"""Put back the flags close() saved, if this site is closed."""
	if note := read_closed_note():
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


class StillClosing(ValueError):
	"""The site is closed by a deploy or rollback some of whose processes still run."""


def note_child(pid: int):
	"""A child process started in a session of its own while this process holds the site closed: it
	would outlive this process, so it counts among the closer's processes."""
	note = read_closed_note() if getattr(frappe.local, "site", None) else None
	if _mine(note):
		_write_closed_note({**note, "children": [*note.get("children", []), [pid, proctable.started(pid)]]})


def still_closing(note: dict | None = None) -> str:
	"""Why the site must stay closed although the deploy or rollback that closed it is dead: child
	processes it started still run (a restore goes on writing). "" when there are none, and while the
	change itself runs: it holds the bench lock and puts the site back itself."""
	note = note if note is not None else read_closed_note()
	if not note or _mine(note):
		return ""
	what = f"{note.get('deployment')} (step: {note.get('step') or 'its first'})"
	if note.get("host", environment.hostname()) != environment.hostname():
		return (
			f"the site is closed by {what} on host {note['host']}, whose processes cannot be seen from here"
		)
	living = orphans(note)
	if not living:
		return ""
	return (
		f"the site is closed by {what}, whose process (pid {note.get('pid')}) has ended while processes it"
		f" started still run: pid {', '.join(map(str, living))}; the site stays closed until they end"
	)


def orphans(note: dict | None = None) -> list[int]:
	"""The processes a dead deploy or rollback left running on this machine: its children, each in a
	session of its own, and what is left of its own process group (the dump of a backup it took)."""
	note = note if note is not None else read_closed_note()
	if not note or _mine(note) or note.get("host", environment.hostname()) != environment.hostname():
		return []
	if owner_alive(note):
		return []
	return proctable.living((0, None), _groups(note))


def end_orphans() -> str:
	"""End what a dead deploy or rollback left running (the watchdog, once they have outlived it by a
	grace): each process group whole. What was ended goes into the closed-site note, and from there
	into the failure of its Deployment. "" when nothing was left running."""
	note = read_closed_note()
	if not orphans(note):
		return ""
	ended = "; ".join(proctable.end(_groups(note), secrets=site_state.config_secrets()))
	_write_closed_note({**note, "ended": ended})
	return ended


def _groups(note: dict) -> list[tuple[int, int | None]]:
	return [tuple(child) for child in note.get("children", [])] + [(note.get("pid"), note.get("started"))]


def owner_alive(note: dict) -> bool:
	return bool(proctable.living((note.get("pid"), note.get("started")), []))


def closing_elsewhere() -> str:
	"""Why no change may start on this bench now: a site closed by a deploy or rollback whose
	processes still run although it no longer holds the bench lock (it was killed, its restore was not)."""
	notes = {site: note for site in get_sites() if (note := read_closed_note(site))}
	return "; ".join(f"{site}: {why}" for site, note in notes.items() if (why := still_closing(note)))


def reopen_abandoned() -> str | None:
	"""If a deploy or rollback died with the site closed, put its flags back and fail its Deployment;
	one that died after opening the site again (in its restart, say) is failed too. While any of its
	processes runs (a restore in its own session outlives a killed rollback) the site stays closed:
	StillClosing says why. The records a rollback killed in its restore kept aside are put back first
	(the restored database has lost them, its Deployment among them): if they cannot be, the site
	stays closed and StillClosing says where they are. Returns what was done, to print."""
	note = read_closed_note()
	if why := still_closing(note):
		raise StillClosing(why)
	said = []
	if note and not _mine(note) and not owner_alive(note):
		name, step = note.get("deployment"), note.get("step") or "its first step"
		if name and os.path.exists(kept := history.path(name)):
			try:
				history.put_back(name)
				said.append(f"{name}: the records it kept aside during its restore are put back")
			except Exception as e:
				raise StillClosing(
					f"{name} was interrupted during {step} and the records it kept aside could not be put"
					f" back ({e}): the database may be half restored. They are in {kept}; the site stays"
					f" in maintenance. Restore its safety backup (`bench --site {frappe.local.site} restore"
					" FILE --force`), then any deploy-manager command puts them back and reopens the site"
				) from e
		put_back(note["flags"])
		_remove_closed_note()
		reason = (
			f"the process (pid {note.get('pid')}) ended during {step} without finishing"
			+ (f"; the watchdog ended what it left running: {note['ended']}" if note.get("ended") else "")
			+ "; maintenance mode and the scheduler were put back as they were"
			+ (
				f". It had begun changing the database: `bench --site {frappe.local.site} deploy-manager"
				f" candidates` lists the backup taken before it"
				if note.get("touched")
				else ""
			)
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
	if read_closed_note() is None:
		return "Maintenance mode and the scheduler are as they were."
	return (
		"Maintenance mode and the scheduler could NOT be put back: what they were is in"
		f" {_closed_note_path()}; the next deploy, rollback or preflight puts them back."
	)


def _mine(note: dict | None) -> bool:
	"""Whether this process wrote `note` (a pid and its start time: pids are reused)."""
	pid = os.getpid()
	return bool(note) and note.get("pid") == pid and note.get("started") in (None, proctable.started(pid))


def _alive(pid) -> bool:
	try:
		os.kill(int(pid), 0)
		return True
	except (TypeError, ValueError, ProcessLookupError):
		return False
	except PermissionError:
		return True


def _closed_note_path(site: str | None = None) -> str:
	if site:
		return os.path.join(get_bench_path(), "sites", site, "locks", "deploy_manager_closed.json")
	return os.path.abspath(frappe.get_site_path("locks", "deploy_manager_closed.json"))


def _write_closed_note(note: dict):
	path = _closed_note_path()
	os.makedirs(os.path.dirname(path), exist_ok=True)
	with open(path + ".tmp", "w") as f:
		json.dump(note, f)
	os.replace(path + ".tmp", path)


def note_step(step: str, touched: bool = False):
	"""Which step the process that closed the site is in, and whether it has begun changing the
	database, for whoever finds it dead."""
	if note := read_closed_note():
		_write_closed_note({**note, "step": step, "touched": touched})


def read_closed_note(site: str | None = None) -> dict | None:
	"""The closed-site note of this site (or of `site`), None when it is open."""
	try:
		with open(_closed_note_path(site)) as f:
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
