"""What a migrate process leaves behind when it exits.

Frappe tears itself down before a migrate process ends, and a migrate that dies never reaches
`after_migrate`. So at exit each watched migrate writes a small JSON note beside the site: the
traceback if the process died of an exception, whether our own closing of the record failed, and
the touched tables Frappe wrote at the very end. The next migrate or the hourly job settles the Deployment
from it. A process killed outright leaves no note at all, which says something too.
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
from frappe.utils import get_system_timezone

NOTES_FOLDER = ("private", "deploy_manager", "migrate")

# site -> what the exit handler needs, gathered while frappe is still up.
_watched: dict[str, dict] = {}
_exit_handler_registered = False


def watch(deployment: str, pending_patches: list[str], lock_guard=None):
	"""Leave a note for `deployment` when this process exits; with what `lock_guard` (a running
	core.dblocks.LockGuard) said, unless `stop_lock_guard` took it first."""
	global _exit_handler_registered
	site = frappe.local.site
	_watched[site] = {
		"lock_guard": lock_guard,
		"deployment": deployment,
		"note": str(_note_path(deployment)),
		"touched_tables_file": os.path.abspath(frappe.get_site_path("touched_tables.json")),
		"time_zone": get_system_timezone(),
		"pending_patches": pending_patches,
		"close_failed": False,
	}
	if not _exit_handler_registered:
		atexit.register(_write_notes)
		_exit_handler_registered = True


def current_deployment() -> str | None:
	"""The Deployment this process opened for the site being migrated, if any."""
	watched = _watched.get(frappe.local.site)
	return watched["deployment"] if watched else None


def stop_lock_guard() -> list[str]:
	"""Stop the lock guard of this site's migrate; returns what it said."""
	watched = _watched.get(frappe.local.site) or {}
	if guard := watched.pop("lock_guard", None):
		guard.__exit__(None, None, None)
		return guard.reports
	return []


def close_failed():
	"""Our after_migrate recording failed: say so, so that a migrate that ends well is not failed."""
	if watched := _watched.get(frappe.local.site):
		watched["close_failed"] = True


def noted_deployments() -> list[str]:
	folder = Path(frappe.get_site_path(*NOTES_FOLDER))
	return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def read(deployment: str) -> dict:
	try:
		return json.loads(_note_path(deployment).read_text())
	except (OSError, ValueError):
		return {}


def discard(deployments: list[str]):
	"""Delete notes once what they said is committed."""
	for deployment in deployments:
		with contextlib.suppress(FileNotFoundError):
			_note_path(deployment).unlink()


def _note_path(deployment: str) -> Path:
	return Path(frappe.get_site_path(*NOTES_FOLDER, f"{deployment}.json")).resolve()


def _write_notes():
	error = "".join(traceback.format_exception(sys.last_value)) if hasattr(sys, "last_value") else ""
	# `bench migrate` handles sites one after the other and stops at the first that fails: an
	# exception that ended the process belongs to the site migrated last.
	last = list(_watched)[-1] if _watched else None
	for site, watched in _watched.items():
		try:
			_write_note(watched, error if site == last else "")
		except Exception as e:
			print(f"deploy_manager: could not leave a note for {watched['deployment']}: {e}", file=sys.stderr)


def _write_note(watched: dict, error: str):
	note = {
		"close_failed": watched["close_failed"],
		"traceback": error,
		"ended_at": str(datetime.now(ZoneInfo(watched["time_zone"])).replace(tzinfo=None)),
		"pending_patches": watched["pending_patches"],
		"touched_tables": [],
	}
	if guard := watched.get("lock_guard"):
		note["lock_waits"], note["lock_stopped"] = guard.reports, guard.stopped
	with contextlib.suppress(OSError, ValueError):
		note["touched_tables"] = json.loads(Path(watched["touched_tables_file"]).read_text())
	path = Path(watched["note"])
	path.parent.mkdir(parents=True, exist_ok=True)
	path.write_text(json.dumps(note))
