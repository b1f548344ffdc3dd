"""What a migrate process leaves behind when it exits.

Frappe tears itself down before a migrate process ends, and a migrate that dies never reaches
`after_migrate`. So at exit each watched migrate writes a small JSON note beside the site: whether
its Deployment was closed, the traceback if the process died of an exception, and the touched
tables Frappe wrote at the very end. The next migrate or the hourly job settles the Deployment
from it. A process killed outright leaves no note at all, which says something too.
"""

import atexit
import contextlib
import json
import os
import sys
import traceback
from datetime import datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import get_system_timezone

NOTES_FOLDER = ("private", "deploy_manager", "migrate")

# site -> what the exit handler needs, gathered while frappe is still up.
_watched: dict[str, dict] = {}
_exit_handler_registered = False


def watch(deployment: str, pending_patches: list[str]):
	global _exit_handler_registered
	site = frappe.local.site
	_watched[site] = {
		"deployment": deployment,
		"note": str(_note_path(deployment)),
		"touched_tables_file": os.path.abspath(frappe.get_site_path("touched_tables.json")),
		"time_zone": get_system_timezone(),
		"pending_patches": pending_patches,
		"closed": False,
	}
	if not _exit_handler_registered:
		atexit.register(_write_notes)
		_exit_handler_registered = True


def watched_deployments() -> set[str]:
	return {w["deployment"] for w in _watched.values()}


def current_deployment() -> str | None:
	"""The Deployment this process opened for the site being migrated, if any."""
	watched = _watched.get(frappe.local.site)
	return watched["deployment"] if watched else None


def close_on_commit():
	"""The Deployment is closed only once the migrate commits it; a later hook may still fail."""
	frappe.db.after_commit.add(partial(_mark_closed, frappe.local.site))


def noted_deployments() -> list[str]:
	folder = Path(frappe.get_site_path(*NOTES_FOLDER))
	return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def read(deployment: str) -> dict:
	try:
		return json.loads(_note_path(deployment).read_text())
	except (OSError, ValueError):
		return {}


def discard_on_commit(deployment: str):
	frappe.db.after_commit.add(partial(_discard, _note_path(deployment)))


def _mark_closed(site: str):
	if site in _watched:
		_watched[site]["closed"] = True


def _discard(path: Path):
	with contextlib.suppress(FileNotFoundError):
		path.unlink()


def _note_path(deployment: str) -> Path:
	return Path(frappe.get_site_path(*NOTES_FOLDER, f"{deployment}.json")).resolve()


def _write_notes():
	error = "".join(traceback.format_exception(sys.last_value)) if hasattr(sys, "last_value") else ""
	for watched in _watched.values():
		try:
			_write_note(watched, error)
		except Exception as e:
			print(f"deploy_manager: could not leave a note for {watched['deployment']}: {e}", file=sys.stderr)


def _write_note(watched: dict, error: str):
	note = {
		"closed": watched["closed"],
		"traceback": "" if watched["closed"] else error,
		"ended_at": str(datetime.now(ZoneInfo(watched["time_zone"])).replace(tzinfo=None)),
		"pending_patches": watched["pending_patches"],
		"touched_tables": [],
	}
	with contextlib.suppress(OSError, ValueError):
		note["touched_tables"] = json.loads(Path(watched["touched_tables_file"]).read_text())
	path = Path(watched["note"])
	path.parent.mkdir(parents=True, exist_ok=True)
	path.write_text(json.dumps(note))
