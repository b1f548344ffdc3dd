"""The watchdog: what cron runs every few minutes from outside the sites (core/cron.py writes its
entry), so that a dead scheduler, dead workers or a deploy killed outright are still seen.

A run looks at every site of the bench with deploy_manager, one after the other, within a hard
deadline and never two at once. It repairs what a dead deploy or rollback left (as the next command
would: closing.reopen_abandoned), and notes what it cannot repair: a site closed by a change whose
processes still run, maintenance mode or a paused scheduler that nothing holds. Each site's findings
go to a file beside it, which `watchdog status` reads even when the site's database does not answer.
"""

import contextlib
import json
import os
import pwd
import signal
import sys
from datetime import datetime, timezone

import frappe
from crontab import CronTab
from filelock import FileLock, Timeout
from frappe.utils import get_bench_path, get_sites

from deploy_manager.core import cron
from deploy_manager.services import closing
from deploy_manager.services.site_state import has_app, on_site

# A run that takes longer than this is stopped: the next one starts in a few minutes anyway.
DEADLINE = 240
REPAIRED, NOTICED, CLEAR = "repaired", "noticed", "clear"


class DeadlinePassed(BaseException):
	"""The run's hard deadline: BaseException, so that no handler of a site's mistakes catches it."""


def crontab() -> CronTab:
	"""The crontab of the bench's owner, whoever runs this (root edits another user's crontab)."""
	owner = pwd.getpwuid(os.stat(get_bench_path()).st_uid).pw_name
	return CronTab(user=True) if owner == pwd.getpwuid(os.getuid()).pw_name else CronTab(user=owner)


def enable(every: int) -> cron.Entry:
	return cron.enable(crontab(), get_bench_path(), sys.executable, every)


def disable() -> int:
	return cron.disable(crontab(), get_bench_path())


def status() -> dict:
	return {
		"bench": get_bench_path(),
		"entries": [entry.line() for entry in cron.entries(crontab(), get_bench_path())],
		"sites": {site: last_run(site) for site in get_sites()},
	}


def run(deadline: int = DEADLINE) -> dict[str, dict]:
	"""Watch every site once; returns each site's findings (also kept beside the site)."""
	lock = FileLock(os.path.join(get_bench_path(), "sites", "deploy_manager_watchdog.lock"), timeout=0)
	try:
		lock.acquire()
	except Timeout:
		raise ValueError("another watchdog run is running on this bench") from None
	previous = signal.signal(signal.SIGALRM, _deadline_passed)
	signal.alarm(deadline)
	found = {}
	try:
		for site in get_sites():
			found[site] = _watch(site)
			if found[site] is not None:
				_keep(site, found[site])
	except DeadlinePassed:
		print(f"watchdog: stopped at its deadline ({deadline} s)", file=sys.stderr)
	finally:
		signal.alarm(0)
		signal.signal(signal.SIGALRM, previous)
		lock.release()
	return {site: result for site, result in found.items() if result is not None}


def _deadline_passed(number, frame):
	raise DeadlinePassed()


def _watch(site: str) -> dict | None:
	"""This site's findings, or None when deploy_manager is not installed on it."""
	findings = []
	try:
		with on_site(site, connect=False):
			# What needs no database first: a change's processes, the flags.
			if why := closing.still_closing():
				findings.append({"status": NOTICED, "finding": why})
			else:
				frappe.connect()
				if not has_app():
					return None
				if repaired := closing.reopen_abandoned():
					findings.append({"status": REPAIRED, "finding": f"an interrupted change: {repaired}"})
				findings += _flags_left(frappe.get_site_config())
	except Exception as e:
		findings.append({"status": NOTICED, "finding": f"the site could not be watched: {e}"})
	return {
		"ran_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
		"findings": findings or [{"status": CLEAR, "finding": "nothing to repair or report"}],
	}


def _flags_left(config: dict) -> list[dict]:
	"""Maintenance mode or a paused scheduler that no deploy or rollback holds (a failed `bench
	update` leaves both): told, not undone; an operator may have set them."""
	left = [flag for flag in closing.FLAGS if config.get(flag)]
	if not left:
		return []
	return [
		{
			"status": NOTICED,
			"finding": f"{' and '.join(left)} on, held by no deploy or rollback of deploy_manager"
			" (a failed bench update leaves them so); `bench --site SITE set-maintenance-mode off` and"
			" `bench --site SITE scheduler resume` put them back".replace("SITE", frappe.local.site),
		}
	]


def _path(site: str) -> str:
	return os.path.join(get_bench_path(), "sites", site, "private", "deploy_manager", "watchdog.json")


def _keep(site: str, result: dict):
	path = _path(site)
	os.makedirs(os.path.dirname(path), exist_ok=True)
	with open(path + ".tmp", "w") as f:
		json.dump(result, f)
	os.replace(path + ".tmp", path)


def last_run(site: str) -> dict | None:
	with contextlib.suppress(FileNotFoundError, ValueError):
		with open(_path(site)) as f:
			return json.load(f)
	return None
