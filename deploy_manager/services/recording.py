"""Record every `bench migrate` as a Deployment.

`before_migrate` opens a Deployment (In Progress) with each app's state, `after_migrate` closes it.
A migrate that dies never reaches `after_migrate`: an exit handler leaves what it knows (the
traceback, the touched tables) in a small file, and the next migrate or the hourly job marks the
Deployment Failed from it. Recording must never break a migrate, so every hook swallows its own
errors into the Error Log.
"""

import atexit
import contextlib
import json
import os
import sys
import traceback
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import frappe
from filelock import FileLock, Timeout
from frappe.utils import get_datetime, get_system_timezone, now_datetime, time_diff_in_seconds

from deploy_manager.core import environment, gitrepo
from deploy_manager.core.deployments import AppState, compare, failure_reason, find_failing_patch

# Our own records are written during the migrate; they are not part of what the deploy changed
# and must never be restored over by a table-level rollback.
OWN_TABLES = {"tabDeployment", "tabDeployment App", "tabDeployment Patch"}

# site -> what the exit handler needs to describe a migrate that did not finish.
_open_migrates: dict[str, dict] = {}


def before_migrate():
	_without_breaking("before_migrate", _open_deployment)


def after_migrate():
	_without_breaking("after_migrate", _close_deployment)


def after_install():
	_without_breaking("after_install", _record_install)


def close_abandoned_deployments():
	"""Hourly: mark Failed the migrates that died, once no migrate holds the site's lock."""
	if _migrate_running():
		return
	_mark_abandoned_failed()


def snapshot_apps() -> list[AppState]:
	states = []
	for app in frappe.get_installed_apps():
		repo = gitrepo.read_state(Path(frappe.get_app_path(app)).parent)
		states.append(AppState(app, _app_version(app), repo.branch, repo.commit, repo.dirty, repo.error))
	return states


def _record_install():
	"""The state the site is in when deploy_manager arrives is the first baseline."""
	doc = _new_deployment("Install", snapshot_apps())
	doc.finished_at = doc.started_at
	doc.status = "Awaiting Verification"
	doc.insert(ignore_permissions=True)


def _open_deployment():
	# Frappe holds the migrate lock for us now, so every other open migrate record is dead.
	_without_breaking("closing abandoned deployments", _mark_abandoned_failed)
	doc = _new_deployment("Bench Migrate", snapshot_apps())
	doc.insert(ignore_permissions=True)
	frappe.db.commit()
	if not _open_migrates:
		atexit.register(_leave_failure_notes)
	_open_migrates[frappe.local.site] = {
		"deployment": doc.name,
		"failure_file": str(_failure_file(doc.name)),
		"touched_tables_file": os.path.abspath(frappe.get_site_path("touched_tables.json")),
		# frappe is torn down by the time the exit handler runs: keep what it needs from it.
		"time_zone": get_system_timezone(),
		"pending_patches": _pending_patches(),
	}


def _new_deployment(source: str, current: list[AppState]):
	"""A Deployment from the last recorded state to `current`.

	`bench update` pulls the code before it migrates, so the working trees already hold the new
	commits when a migrate starts: the state before is the one the previous Deployment left.
	"""
	settings = frappe.get_cached_doc("Deploy Manager Settings")
	previous = _last_recorded_state()
	doc = frappe.get_doc(
		{
			"doctype": "Deployment",
			"site": frappe.local.site,
			"status": "In Progress",
			"source": source,
			"environment": settings.default_environment or "Production",
			"platform": settings.platform or environment.detect_platform(),
			"strategy": "In-place",
			"started_at": now_datetime(),
			"triggered_by": environment.operator(),
			"host": environment.hostname(),
			"pid": os.getpid(),
		}
	)
	doc.set_apps(compare(current if previous is None else previous, current))
	doc.add_log(f"{source} started by {doc.triggered_by} (pid {doc.pid})")
	if previous is None:
		doc.add_log("No earlier state recorded: this deployment is the baseline")
	for state in current:
		if state.error:
			doc.add_log(f"{state.app}: {state.error}")
	return doc


def _close_deployment():
	opened = _open_migrates.pop(frappe.local.site, None)
	if not opened:
		return
	doc = frappe.get_doc("Deployment", opened["deployment"])
	before = [AppState(r.app, r.from_version, r.branch, r.from_commit) for r in doc.apps]
	doc.set_apps(compare(before, snapshot_apps()))
	doc.finished_at = now_datetime()
	doc.set("patches", _patches_between(doc.started_at, doc.finished_at))
	doc.touched_tables = _format_tables(frappe.flags.touched_tables or ())
	doc.status = "Awaiting Verification"
	doc.add_log(_summary(doc))
	doc.save(ignore_permissions=True)
	frappe.db.commit()


def _last_recorded_state() -> list[AppState] | None:
	last = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")
	if not last:
		return None
	rows = frappe.get_all(
		"Deployment App",
		filters={"parent": last[0], "parenttype": "Deployment"},
		fields=["app", "to_version", "branch", "to_commit"],
	)
	return [AppState(r.app, r.to_version, r.branch, r.to_commit) for r in rows]


def _mark_abandoned_failed():
	"""Callers hold or have tested the site's migrate lock: no other migrate of this site is alive."""
	for name in frappe.get_all(
		"Deployment", filters={"status": "In Progress", "source": "Bench Migrate"}, pluck="name"
	):
		if name not in {m["deployment"] for m in _open_migrates.values()}:
			_mark_failed(frappe.get_doc("Deployment", name), _read_failure_file(name))


def _mark_failed(doc, note: dict):
	# The failing patch may be gone from patches.txt by now: prefer the list from the migrate itself.
	pending = note.get("pending_patches") or _pending_patches()
	tb = note.get("traceback", "")
	failing = find_failing_patch(tb, pending)
	doc.failure_reason = failure_reason(tb, pending, left_note=bool(note))
	doc.traceback = tb
	doc.finished_at = get_datetime(note["ended_at"]) if note.get("ended_at") else None
	doc.set("patches", _patches_between(doc.started_at, doc.finished_at or now_datetime()))
	if failing:
		doc.append("patches", {"patch": failing, "status": "Failed", "traceback": tb})
	doc.touched_tables = _format_tables(note.get("touched_tables", ()))
	doc.status = "Failed"
	doc.add_log(f"Marked Failed: {doc.failure_reason}")
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	with contextlib.suppress(FileNotFoundError):
		_failure_file(doc.name).unlink()


def _leave_failure_notes():
	"""At process exit, for each migrate that never reached after_migrate, save what is known."""
	error = "".join(traceback.format_exception(sys.last_value)) if hasattr(sys, "last_value") else ""
	for opened in _open_migrates.values():
		ended_at = datetime.now(ZoneInfo(opened["time_zone"])).replace(tzinfo=None)
		note = {
			"traceback": error,
			"ended_at": str(ended_at),
			"pending_patches": opened["pending_patches"],
			"touched_tables": [],
		}
		with contextlib.suppress(OSError, ValueError):
			note["touched_tables"] = json.loads(Path(opened["touched_tables_file"]).read_text())
		with contextlib.suppress(OSError):
			path = Path(opened["failure_file"])
			path.parent.mkdir(parents=True, exist_ok=True)
			path.write_text(json.dumps(note))


def _without_breaking(hook: str, fn):
	savepoint = f"deploy_manager_{frappe.scrub(hook)}"
	try:
		frappe.db.savepoint(savepoint)
		fn()
	except Exception:
		with contextlib.suppress(Exception):
			frappe.db.rollback(save_point=savepoint)
		print(
			f"deploy_manager: recording the deployment failed in {hook}; see the Error Log", file=sys.stderr
		)
		with contextlib.suppress(Exception):
			frappe.log_error(title=f"deploy_manager: {hook} recording failed")


def _migrate_running() -> bool:
	"""Whether a migrate holds this site's lock, tested the way Frappe takes it."""
	lock = FileLock(os.path.abspath(frappe.get_site_path("locks", "bench_migrate.lock")), timeout=0)
	try:
		with lock:
			return False
	except Timeout:
		return True


def _failure_file(deployment: str) -> Path:
	return Path(frappe.get_site_path("private", "deploy_manager", "migrate", f"{deployment}.json")).resolve()


def _read_failure_file(deployment: str) -> dict:
	try:
		return json.loads(_failure_file(deployment).read_text())
	except (OSError, ValueError):
		return {}


def _pending_patches() -> list[str]:
	from frappe.modules.patch_handler import get_all_patches

	try:
		executed = set(frappe.get_all("Patch Log", filters={"skipped": 0}, pluck="patch"))
		return [p for p in get_all_patches() if not p.startswith("finally:") and p not in executed]
	except Exception:
		# A broken patches.txt must not stop us from recording that the migrate failed.
		return []


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
	return "\n".join(sorted(set(tables) - OWN_TABLES))


def _app_version(app: str) -> str:
	try:
		return str(frappe.get_attr(f"{app}.__version__"))
	except Exception:
		return ""


def _summary(doc) -> str:
	moved = [f"{r.app} {r.from_commit[:8] or '-'} -> {r.to_commit[:8] or '-'}" for r in doc.apps if r.changed]
	skipped = sum(1 for p in doc.patches if p.status == "Skipped")
	return (
		f"Migrate finished in {time_diff_in_seconds(doc.finished_at, doc.started_at):.1f}s: "
		f"{', '.join(moved) or 'no app moved'}; {len(doc.patches)} patches ({skipped} skipped)"
	)
