"""The watchdog: what cron runs every few minutes from outside the sites (core/cron.py writes its
entry), so that a dead scheduler, dead workers or a deploy killed outright are still seen.

A run looks at every site of the bench with deploy_manager, one after the other, within a hard
deadline and never two at once. It repairs what a dead deploy or rollback left (as the next command
would: closing.reopen_abandoned), after ending what it left running once Settings' grace is over;
notes what it cannot repair (maintenance mode or a paused scheduler that nothing holds); judges an
open site with its own suite (a Verification Check of phase Watchdog) and runs the sweep the
scheduler did not run; and alerts once per problem and once when it clears. Each site's findings go
to a file beside it, which `watchdog status` and Desk read even when the database does not answer.
"""

import contextlib
import json
import os
import pwd
import signal
import sys
from datetime import datetime, timedelta, timezone

import frappe
from crontab import CronTab
from filelock import FileLock, Timeout
from frappe import _
from frappe.utils import cint, get_bench_path, get_sites

from deploy_manager.core import cron
from deploy_manager.core.checks import FAIL, WARN, CheckResult
from deploy_manager.core.verdict import decide, unconfirmed
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.services import closing, monitoring, notifications, verification
from deploy_manager.services.site_state import has_app, on_site

# A run that takes longer than this is stopped: the next one starts in a few minutes anyway.
DEADLINE = 240
# waiting: seen, not yet reported (it may be someone's work: maintenance set by hand).
REPAIRED, NOTICED, WAITING, CLEAR = "repaired", "noticed", "waiting", "clear"
CLEAR_FINDING = {"key": "", "status": CLEAR, "finding": "nothing to repair or report"}
# A run that finds what the run before found is stored as a Verification Check this often.
STORE_UNCHANGED_EVERY = timedelta(hours=1)
NEVER_REOPEN = "Never"


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


def site_status() -> dict:
	"""For Desk: this bench's crontab entry (the schedule), and this site's last run."""
	try:
		schedules = [entry.schedule for entry in cron.entries(crontab(), get_bench_path()) if entry.enabled]
	except Exception:
		schedules = []  # no crontab command, or not this user's to read: the runs still say it ran
	return {"schedules": schedules, "last_run": last_run(frappe.local.site)}


def run(deadline: int = DEADLINE) -> dict[str, dict]:
	"""Watch every site once; returns each site's findings (also kept beside the site)."""
	lock = FileLock(os.path.join(get_bench_path(), "sites", "deploy_manager_watchdog.lock"), timeout=0)
	try:
		lock.acquire()
	except Timeout:
		raise ValueError("another watchdog run is running on this bench") from None
	previous = signal.signal(signal.SIGALRM, _deadline_passed)
	signal.alarm(deadline)
	found, sites = {}, get_sites()
	# Each site is set up on its own (on_site): Frappe initialised without a site would make its
	# init skip the first one.
	frappe.destroy()
	try:
		for site in sites:
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
	"""This site's findings, or None when deploy_manager is not installed on it. A problem keeps the
	time it was first seen (`since`) from run to run: what depends on how long it has lasted does."""
	before = last_run(site)
	since = (before or {}).get("since", {})
	now = datetime.now(timezone.utc)
	findings = []
	with on_site(site, connect=False):
		try:
			frappe.connect()
			if not has_app():
				return None
			database = ""
		except Exception as e:
			# A site closed by one of our changes has the app, whatever its database says meanwhile.
			if before is None and not closing.read_closed_note():
				return None  # never watched: not known to have deploy_manager
			database = f"its database does not answer ({e})"
		check, stored_at = (before or {}).get("check"), (before or {}).get("stored_at")
		try:
			settings = get_settings()
			findings = _abandoned(settings, since, now, database)
			# Still closed by a change: its own while it works, or left to its processes (a restore
			# rewriting the database): nothing is judged or written meanwhile.
			if note := closing.read_closed_note():
				what = f"{note.get('deployment')} is at work (step: {note.get('step') or 'its first'})"
				findings = findings or [_finding("", CLEAR, f"{what}: nothing judged meanwhile")]
			else:
				findings = findings or _flags_left(settings, since, now)
				judged = None
				if not findings and not database:
					# Open, and nothing of ours holds it: the site judged as its own suite judges it.
					findings, judged = _verified(cint(settings.failures_in_a_row))
				if not database and _worth_storing(before, findings or [CLEAR_FINDING], now):
					check, stored_at = _store(findings, judged), now.isoformat(timespec="seconds")
		except Exception as e:
			findings = [_finding("unwatchable", NOTICED, f"the site could not be watched: {e}")]
		if database and not closing.read_closed_note():
			# (A restore rewriting the database is what the closed site's finding already says.)
			findings.append(_finding("database", NOTICED, database))
		alerted = _alerted(findings, (before or {}).get("alerted", {}), check, can_send=not database)
	return {
		"ran_at": now.isoformat(timespec="seconds"),
		"check": check,
		"stored_at": stored_at,
		"findings": findings or [CLEAR_FINDING],
		"since": {
			f["key"]: since.get(f["key"], now.isoformat()) for f in findings if f["status"] != REPAIRED
		},
		"alerted": alerted,
	}


def _finding(key: str, status: str, text: str) -> dict:
	return {"key": key, "status": status, "finding": text}


def _worth_storing(before: dict | None, findings: list[dict], now: datetime) -> bool:
	"""Whether this run becomes a Verification Check: when it found something else than the run
	before, and hourly while nothing changes (every five minutes would be a hundred thousand checks
	a year; the file beside the site has every run)."""
	if not (before and before.get("stored_at")):
		return True
	if _signature(findings) != _signature(before.get("findings", [])):
		return True
	return now - datetime.fromisoformat(before["stored_at"]) >= STORE_UNCHANGED_EVERY


def _signature(findings: list[dict]) -> list[tuple[str, str]]:
	return sorted((f["key"], f["status"]) for f in findings)


def _abandoned(settings, since: dict, now: datetime, database: str) -> list[dict]:
	"""A site closed by a deploy or rollback that died: what it left running ended after the grace,
	then the site reopened and its Deployment failed, where Settings allow it (they do by default)."""
	note = closing.read_closed_note()
	may_reopen = settings.watchdog_reopen != NEVER_REOPEN
	if why := closing.still_closing(note):
		key = f"left running:{note.get('deployment')}"
		if not (may_reopen and closing.orphans(note)):
			return [_finding(key, NOTICED, why)]  # from another host, or not ours to end
		due = datetime.fromisoformat(since.get(key, now.isoformat())) + timedelta(
			minutes=cint(settings.watchdog_orphan_grace)
		)
		if now < due:
			return [_finding(key, NOTICED, f"{why}; the watchdog ends them at {due:%H:%M} UTC")]
		closing.end_orphans()
	if database or not may_reopen:
		if not note or closing.owner_alive(note):
			return []
		left = f"the site is closed by {note.get('deployment')}, whose process has ended; "
		return [
			_finding(
				f"abandoned:{note.get('deployment')}",
				NOTICED,
				left
				+ (
					f"{database}: it is reopened once it answers"
					if database
					else "Settings say the watchdog does not reopen it: any deploy-manager command does"
				),
			)
		]
	# Also a deploy killed after it reopened the site (in its restart): its Deployment failed.
	if repaired := closing.reopen_abandoned():
		return [_finding(f"repaired:{repaired}", REPAIRED, f"an interrupted change: {repaired}")]
	return []


def _verified(in_a_row: int) -> tuple[list[dict], tuple]:
	"""The sweep run if the scheduler has not run it, then the site's suite: each failing check is a
	finding, noticed once a transient one has failed as many runs in a row as Settings say. Returns
	the findings and the suite's (outcome, failed_before, in_a_row), for `_store`."""
	findings = []
	if late := monitoring.unswept():
		monitoring.monitor_deployments()
		frappe.db.commit()
		findings.append(
			_finding(
				"unswept",
				REPAIRED,
				f"{', '.join(late)} waited {monitoring.UNSWEPT_AFTER_MINUTES} min or more for the five-minute"
				" sweep (the scheduler did not run it): the watchdog ran it",
			)
		)
	failed_before = verification.stored_failures(None, in_a_row)
	outcome = verification.run_suite(failed_before=failed_before)
	for result in outcome.results:
		if result.status == FAIL:
			waits = unconfirmed(result, failed_before, in_a_row)
			text = f"{result.name}: {result.message}"
			findings.append(_finding(f"check:{result.name}", WAITING if waits else NOTICED, text))
	return findings, (outcome, failed_before, in_a_row)


def _store(findings: list[dict], judged: tuple | None) -> str:
	"""Every run the database answers for is a Verification Check of phase Watchdog, which Desk lists:
	the suite's results when it ran, and what the watchdog repaired or noticed itself, each a row of
	its own (a warning: someone should know)."""
	told = [
		CheckResult(WARN, f["finding"], name=_("Watchdog"), category="watchdog", value=f["status"])
		for f in findings
		if f["status"] != CLEAR and not f["key"].startswith("check:")
	]
	outcome, failed_before, in_a_row = judged or (None, {}, 1)
	results = (outcome.results if outcome else []) + told
	verdict = decide(results, failed_before, in_a_row)
	stored = verification.Outcome(results, verdict, outcome.duration if outcome else 0.0)
	check = verification.store(stored, "watchdog").name
	frappe.db.commit()
	return check


def _alerted(findings: list[dict], alerted: dict, check: str | None, can_send: bool) -> dict:
	"""Alert once per problem (noticed, or repaired) and once when it clears; returns the problems
	alerted and not yet cleared (key -> what was said). Kept as they were when nothing could be sent
	(the database, which holds where to, does not answer, or every way failed): the next run tries."""
	problems = {f["key"]: f for f in findings if f["status"] in (NOTICED, REPAIRED)}
	opened = [f["finding"] for key, f in problems.items() if key not in alerted]
	cleared = [text for key, text in alerted.items() if key not in problems]
	if not (opened or cleared) or not can_send:
		return alerted
	try:
		failure = notifications.watchdog_alert(opened, cleared, check)
	except Exception as e:
		failure = str(e)
	if failure:
		print(f"watchdog: {frappe.local.site}: the alert was not sent ({failure})", file=sys.stderr)
		return alerted
	# A repair is an event: told once, nothing to clear later.
	return {key: f["finding"] for key, f in problems.items() if f["status"] == NOTICED}


def _flags_left(settings, since: dict, now: datetime) -> list[dict]:
	"""Maintenance mode or a paused scheduler that no deploy or rollback holds (a failed `bench
	update` leaves both): reported once it has lasted Settings' minutes, never undone (an operator
	may have set them). Only for a site no change of ours holds closed."""
	config = frappe.get_site_config()
	left = [flag for flag in closing.FLAGS if config.get(flag)]
	if not left:
		return []
	key = "flags left:" + ",".join(left)
	first = datetime.fromisoformat(since.get(key, now.isoformat()))
	lasted = int((now - first).total_seconds() // 60)
	text = (
		f"{' and '.join(left)} on for {lasted} min, held by no deploy or rollback of deploy_manager"
		" (a failed bench update leaves them so); `bench --site SITE set-maintenance-mode off` and"
		" `bench --site SITE scheduler resume` put them back".replace("SITE", frappe.local.site)
	)
	reported = now - first >= timedelta(minutes=cint(settings.watchdog_closed_after))
	return [_finding(key, NOTICED if reported else WAITING, text)]


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
