"""Record every `bench migrate` as a Deployment.

`before_migrate` opens a Deployment (In Progress) with each app's state and `after_migrate` closes
it (Awaiting Verification). A migrate that dies never reaches `after_migrate`; what its process
left at exit (see exit_notes) lets the next migrate or the hourly job settle it as Failed.
Recording must never break a migrate: each hook rolls its own work back to a savepoint and sends
the error to the Error Log.
"""

import contextlib
import os
import sys

import frappe
from filelock import FileLock, Timeout
from frappe.utils import get_datetime, now_datetime

from deploy_manager.core.deployments import AppState, compare, failure_reason, find_failing_patch
from deploy_manager.core.formatting import describe_moves
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import backups, exit_notes, lock_guard
from deploy_manager.services.monitoring import enqueue_post_deploy_verification
from deploy_manager.services.site_state import (
	IN_DEPLOY,
	IN_ROLLBACK,
	OWN_TABLES,
	all_patches,
	executed_patches,
	pending_patches,
	snapshot_apps,
)


def before_migrate():
	if os.environ.get(IN_ROLLBACK):
		return  # the rollback that runs this migrate records itself
	if _without_breaking("before_migrate", _open_deployment) and not os.environ.get(IN_DEPLOY):
		# Outside the guard: when Settings want it, a failed backup stops the migrate. The deploy
		# command has taken and verified its own.
		backups.before_deploy(exit_notes.current_deployment())


def after_migrate():
	if os.environ.get(IN_ROLLBACK):
		return
	if not _without_breaking("after_migrate", _close_deployment):
		exit_notes.close_failed()


def after_install():
	"""The Install baseline. Unlike the migrate hooks this may fail the command: an install whose
	DocTypes were not synced is no install, and must not pass for one."""
	if not frappe.db.table_exists("Deployment"):
		frappe.throw(
			frappe._(
				"deploy_manager's DocTypes were not synced: this site cached its app list before"
				" deploy_manager was in apps.txt. Run `bench --site {0} clear-cache`, then install again."
			).format(frappe.local.site)
		)
	_without_breaking("after_install", _record_install)


def settle_finished_migrates():
	"""Hourly: settle the records of migrates that have ended, unless a migrate runs right now."""
	if not _unsettled():
		return  # the usual case: no lock taken at all
	lock = FileLock(os.path.abspath(frappe.get_site_path("locks", "bench_migrate.lock")), timeout=0)
	try:
		# Frappe waits one second for this lock before it refuses a migrate; settling takes
		# milliseconds, and holding it means no migrate is judged while it starts.
		with lock:
			settled = _settle_earlier_migrates()
			frappe.db.commit()
	except Timeout:
		return
	exit_notes.discard(settled)


def _record_install():
	"""The state the site is in when deploy_manager arrives is the first baseline."""
	doc = _new_deployment("Install", snapshot_apps())
	doc.finish("Install", ": the baseline, recorded and not judged", status=lifecycle.BASELINE)
	doc.insert(ignore_permissions=True)


def _open_deployment():
	# Frappe holds the migrate lock now: every earlier migrate of this site has ended.
	settled = _settle_earlier_migrates()
	if adopted := os.environ.get(IN_DEPLOY):
		doc = frappe.get_doc("Deployment", adopted)
		doc.add_log(f"migrate started (pid {os.getpid()})")
		doc.save(ignore_permissions=True)
		guard = None  # the deploy command guards its migrate from outside
	else:
		doc = _new_deployment("Bench Migrate", snapshot_apps())
		guard = _start_lock_guard(doc)
		doc.insert(ignore_permissions=True)
	exit_notes.watch(doc.name, pending_patches(), guard)
	# Committed at once (and last, as a commit ends our savepoint): if a later before_migrate hook
	# fails, Frappe rolls the phase back, and the record of this migrate must survive that.
	frappe.db.commit()
	exit_notes.discard(settled)


def _start_lock_guard(doc):
	"""The lock guard of this migrate; one that cannot start is noted, and the migrate goes on."""
	try:
		return lock_guard.watch_migrate()
	except Exception as e:
		doc.add_log(f"lock guard not started: {e}")
		return None


def _close_deployment():
	name = exit_notes.current_deployment()
	if not name or frappe.db.get_value("Deployment", name, "status") != lifecycle.IN_PROGRESS:
		return
	doc = frappe.get_doc("Deployment", name)
	doc.add_lock_waits("migrate", exit_notes.stop_lock_guard())
	before = [AppState(r.app, r.from_version, r.from_branch, r.from_commit, r.dirty) for r in doc.apps]
	doc.set_apps(compare(before, snapshot_apps()))
	doc.set("patches", _patches_between(doc.started_at, now_datetime()))
	doc.touched_tables = _format_tables(frappe.flags.touched_tables or ())
	if os.environ.get(IN_DEPLOY):
		# The deploy command builds, restarts and closes the record itself.
		doc.add_log(f"migrate finished: {_outcome(doc)}")
		doc.save(ignore_permissions=True)
		return
	doc.finish("Migrate", f": {_outcome(doc)}")
	doc.save(ignore_permissions=True)
	enqueue_post_deploy_verification(doc.name)


def _new_deployment(source: str, current: list[AppState]):
	"""A Deployment from the last recorded state to `current`.

	`bench update` pulls the code before it migrates, so the working trees already hold the new
	commits when a migrate starts: the state before is the one the previous Deployment left.
	"""
	previous = _last_recorded_state()
	doc = lifecycle.start(source, compare(current if previous is None else previous, current))
	doc.add_log(f"{source} started by {doc.triggered_by} (pid {doc.pid})")
	if previous is None:
		doc.add_log("No earlier state recorded: this deployment is the baseline")
	for state in current:
		if state.error:
			doc.add_log(f"{state.app}: {state.error}")
	return doc


def _last_recorded_state() -> list[AppState] | None:
	last = frappe.get_all(
		"Deployment",
		filters={"source": ("in", lifecycle.RECORDED_SOURCES)},
		order_by="creation desc",
		limit=1,
		pluck="name",
	)
	if not last:
		return None
	rows = frappe.get_all(
		"Deployment App",
		filters={"parent": last[0], "parenttype": "Deployment"},
		fields=["app", "to_version", "branch", "to_commit"],
	)
	return [AppState(r.app, r.to_version, r.branch, r.to_commit) for r in rows]


def _unsettled() -> list[str]:
	"""Records of migrates that ended unclosed, and notes not yet read, other than this migrate's."""
	unfinished = frappe.get_all(
		"Deployment", filters={"status": lifecycle.IN_PROGRESS, "source": "Bench Migrate"}, pluck="name"
	)
	ours = exit_notes.current_deployment()
	return sorted(name for name in {*unfinished, *exit_notes.noted_deployments()} if name != ours)


def _settle_earlier_migrates() -> list[str]:
	"""Settle what earlier migrates left; return the names whose notes may go once committed.

	Callers hold the site's migrate lock, so none of these migrates is still running. A note is
	deleted only after the commit that used it: a rollback must find it again next time.
	"""
	return [name for name in _unsettled() if _without_breaking(f"settling {name}", lambda n=name: _settle(n))]


def settle_adopted(name: str, failed: bool):
	"""After the deploy command's migrate process has ended: what a failed one left in its note (the
	traceback, the failing patch) goes on the Deployment, and so does Frappe's last list of touched
	tables."""
	note = exit_notes.read(name)
	doc = frappe.get_doc("Deployment", name)
	if failed:
		_mark_failed(doc, note)
	if note.get("touched_tables"):
		doc.touched_tables = _format_tables(
			{*(doc.touched_tables or "").splitlines(), *note["touched_tables"]}
		)
	doc.save(ignore_permissions=True)
	exit_notes.discard([name])


def _settle(name: str):
	if not frappe.db.exists("Deployment", name):
		return
	note = exit_notes.read(name)
	doc = frappe.get_doc("Deployment", name)
	if doc.status == lifecycle.IN_PROGRESS and note.get("close_failed") and not note.get("traceback"):
		# The migrate finished; only our own after_migrate recording failed (see the Error Log).
		doc.finish(
			"Migrate", ", but recording its end failed: see the Error Log", get_datetime(note["ended_at"])
		)
	elif doc.status == lifecycle.IN_PROGRESS or note.get("traceback"):
		# A traceback also fails a record already closed: a later hook committed, then raised.
		_mark_failed(doc, note)
	if note.get("touched_tables"):
		# Frappe writes its own list at the very end of migrate, after our after_migrate.
		doc.touched_tables = _format_tables(
			{*(doc.touched_tables or "").splitlines(), *note["touched_tables"]}
		)
	doc.save(ignore_permissions=True)


def _mark_failed(doc, note: dict):
	executed = executed_patches()
	# The failing patch may be gone from patches.txt by now: prefer the list from the migrate itself.
	listed = note["pending_patches"] if "pending_patches" in note else all_patches()
	pending = [p for p in listed if p not in executed]
	tb = note.get("traceback", "")
	ended = get_datetime(note["ended_at"]) if note.get("ended_at") else None
	doc.traceback = tb
	doc.set("patches", _patches_between(doc.started_at, ended or now_datetime()))
	if failing := find_failing_patch(tb, pending):
		doc.append("patches", {"patch": failing, "status": "Failed", "traceback": tb})
	doc.add_lock_waits("migrate", note.get("lock_waits") or [])
	reason = failure_reason(tb, pending, left_note=bool(note))
	if stopped := note.get("lock_stopped"):
		reason = f"Migrate stopped by the lock guard: {stopped}. {reason}"
	doc.fail(reason)
	doc.finished_at = ended


def _without_breaking(what: str, fn) -> bool:
	"""Run `fn`; on an error roll its work back, log it, and say False instead of raising."""
	savepoint = f"deploy_manager_{frappe.scrub(what)}"
	try:
		frappe.db.savepoint(savepoint)
		fn()
		return True
	except Exception:
		# The database itself may be what failed: then neither the rollback nor the log can work.
		with contextlib.suppress(Exception):
			frappe.db.rollback(save_point=savepoint)
		print(f"deploy_manager: recording failed in {what}; see the Error Log", file=sys.stderr)
		with contextlib.suppress(Exception):
			frappe.log_error(title=f"deploy_manager: {what} recording failed")
		return False


def _patches_between(start, end) -> list[dict]:
	# Bounded on both sides: rows written before the site's time zone was last changed can carry
	# timestamps in the future.
	logs = frappe.get_all(
		"Patch Log",
		filters=[["creation", ">=", start], ["creation", "<=", end]],
		fields=["patch", "skipped", "traceback"],
		order_by="creation asc",
	)
	return [
		{"patch": log.patch, "status": "Skipped" if log.skipped else "Run", "traceback": log.traceback}
		for log in logs
	]


def _format_tables(tables) -> str:
	tables = set(tables) - OWN_TABLES
	# Frappe's tracker also records the first word of a quoted multi-word name ("tabInstalled"
	# beside "tabInstalled Application"); such a fragment names no table.
	fragments = {t for t in tables if any(other.startswith(t + " ") for other in tables)}
	return "\n".join(sorted(tables - fragments))


def _outcome(doc) -> str:
	skipped = sum(1 for p in doc.patches if p.status == "Skipped")
	return f"{describe_moves(doc.apps)}; {len(doc.patches)} patches ({skipped} skipped)"
