"""Run the check suite against this site and keep the outcome as a Verification Check.

Reading what to check needs only the site's config, not its database: the suite runs even when
the database is down, and the outcome is stored only when the database answers.
"""

import contextlib
import os
import time
from dataclasses import dataclass

import frappe
from frappe.utils import add_to_date, now_datetime, time_diff_in_seconds

from deploy_manager.core import checks
from deploy_manager.core.checks import dependencies, errors, http, system
from deploy_manager.core.formatting import table
from deploy_manager.core.verdict import Verdict, decide

SUITE = [*http.CHECKS, *dependencies.CHECKS, *errors.CHECKS, *system.CHECKS]
PHASES = {
	"pre": "Pre-deploy",
	"post": "Post-deploy",
	"monitoring": "Monitoring",
	"scheduled": "Scheduled",
	"manual": "Manual",
}
DEADLINE = 30.0
# An error title seen in this many days before the window is not new.
KNOWN_ERRORS_DAYS = 14


# `verify` exits 3 when a site could not be verified at all (0-2 are the verdicts').
COULD_NOT_VERIFY = 3
# Without a deployment, or after an old one, errors are judged over at most this trailing window.
ERROR_WINDOW_HOURS = 24


@dataclass
class Outcome:
	results: list[checks.CheckResult]
	verdict: Verdict
	# Seconds; the timestamps are taken when storing, as reading the time zone needs the database.
	duration: float


def verify_sites(sites: list[str], phase: str, deployment: str | None = None) -> tuple[dict, int]:
	"""Verify each site, store what can be stored; return the report and the worst exit code."""
	reports, exit_code = [], 0
	for site in sites:
		try:
			frappe.init(site=site)
			report = verify_site(phase, deployment, only_if_installed=len(sites) > 1)
		except Exception as e:
			report = {"site": site, "error": f"could not verify: {e}", "exit_code": COULD_NOT_VERIFY}
		finally:
			frappe.destroy()
		if report:
			exit_code = max(exit_code, report["exit_code"])
			reports.append(report)
	return {"sites": reports}, exit_code


def verify_site(phase: str, deployment: str | None = None, only_if_installed: bool = False) -> dict | None:
	"""Run the suite on the initialised site, store it when the database answers, and report.

	With `only_if_installed` (several sites at once), a site without deploy_manager gives None.
	"""
	not_stored = _connect()
	if not not_stored and "deploy_manager" not in frappe.get_installed_apps():
		if only_if_installed:
			return None
		not_stored = "deploy_manager is not installed on this site"
	outcome = run_suite(deployment)
	report = {
		"site": frappe.local.site,
		"phase": PHASES[phase],
		"verdict": outcome.verdict.action,
		"verdict_reason": outcome.verdict.reason,
		"exit_code": outcome.verdict.exit_code,
		"results": [_row(r) for r in outcome.results],
	}
	if not not_stored:
		try:
			report["name"] = store(outcome, phase, deployment).name
			frappe.db.commit()
		except Exception as e:
			with contextlib.suppress(Exception):
				frappe.db.rollback()
			not_stored = str(e)
	if not_stored:
		report["not_stored"] = not_stored
	return report


def render_report(report: dict) -> str:
	"""The `verify` report as text: per site the verdict, its reason and a table of checks."""
	blocks = []
	for site in report["sites"]:
		if "error" in site:
			blocks.append(f"{site['site']}: {site['error']}")
			continue
		rows = [[r["check_name"], r["status"], r["value"], r["message"]] for r in site["results"]]
		stored = f"stored as {site['name']}" if site.get("name") else f"not stored: {site['not_stored']}"
		blocks.append(
			f"{site['site']}: {site['verdict']} ({stored})\n  {site['verdict_reason']}\n"
			+ table(["Check", "Status", "Value", "Message"], rows)
		)
	return "\n\n".join(blocks) or "No site with deploy_manager to verify."


def _connect() -> str:
	"""Connect for real (frappe connects lazily); '' or why the database is out of reach."""
	try:
		frappe.connect()
		frappe.db.sql("select 1")
		return ""
	except Exception as e:
		return f"the database does not answer: {e}"


def run_suite(deployment: str | None = None) -> Outcome:
	"""The checks against this site; frappe must be initialised for it, not connected."""
	started = time.monotonic()
	results = checks.run(SUITE, site_target(deployment), deadline=DEADLINE)
	return Outcome(results, decide(results), round(time.monotonic() - started, 3))


def site_target(deployment: str | None = None) -> checks.Target:
	"""What the checks look at. Facts from the database are read here, in this thread (frappe's
	connection is not shared with the checks' threads); one that cannot be read goes in as its error.
	Secrets are wrapped so that no repr, and so no traceback with locals, shows them."""
	url, host = _site_url()
	db = {
		"host": frappe.conf.db_host or "127.0.0.1",
		"port": frappe.conf.db_port or 3306,
		"user": frappe.conf.db_user or frappe.conf.db_name,
		"password": checks.Secret(frappe.conf.db_password or ""),
		"database": frappe.conf.db_name,
	}
	redis = {name: frappe.conf[name] for name in ("redis_cache", "redis_queue") if frappe.conf.get(name)}
	extra = {
		"db": db,
		"redis": redis,
		"paths": [os.path.abspath(frappe.get_site_path())],
		"error_logs": _facts(lambda: _error_log_facts(deployment or _current_deployment())),
	}
	return checks.Target(url=url, host=host, extra=extra)


def _facts(gather):
	try:
		return gather()
	except Exception as e:
		return e


def _current_deployment() -> str | None:
	"""The deployment whose code runs now."""
	finished = frappe.get_all(
		"Deployment",
		filters={"finished_at": ("is", "set")},
		order_by="finished_at desc",
		limit=1,
		pluck="name",
	)
	return finished[0] if finished else None


def _error_log_facts(deployment: str | None) -> dict:
	"""Error Log entries since the deployment against an equal window before it; titles not seen in
	the weeks before are new. The window is at most a day: the Error Log forgets old entries, and
	against them every title would look new."""
	now = now_datetime()
	earliest = add_to_date(now, hours=-ERROR_WINDOW_HOURS)
	since = earliest
	if deployment:
		started, finished = frappe.db.get_value("Deployment", deployment, ["started_at", "finished_at"])
		since = max(finished or started, earliest)
	window = max(60.0, time_diff_in_seconds(now, since))
	after = _error_counts([["creation", ">=", since]])
	before = _error_counts(
		[["creation", ">=", add_to_date(since, seconds=-window)], ["creation", "<", since]]
	)
	known = _error_counts(
		[["creation", ">=", add_to_date(since, days=-KNOWN_ERRORS_DAYS)], ["creation", "<", since]]
	)
	return {
		"after": sum(after.values()),
		"before": sum(before.values()),
		"window_minutes": window / 60,
		"new_titles": sorted(set(after) - set(known)),
	}


def _error_counts(filters: list) -> dict[str, int]:
	rows = frappe.get_all("Error Log", filters=filters, fields=["method", "count(*) as n"], group_by="method")
	return {row.method: row.n for row in rows}


def store(outcome: Outcome, phase: str, deployment: str | None = None):
	verdict = outcome.verdict
	finished = now_datetime()
	return frappe.get_doc(
		{
			"doctype": "Verification Check",
			"site": frappe.local.site,
			"deployment": deployment,
			"phase": PHASES[phase],
			"status": "Completed",
			"verdict": verdict.action,
			"verdict_reason": verdict.reason,
			"started_at": add_to_date(finished, seconds=-outcome.duration),
			"finished_at": finished,
			"results": [_row(r) for r in outcome.results],
		}
	).insert(ignore_permissions=True)


def _site_url() -> tuple[str, str]:
	"""(base URL, Host header): Settings, else the site's host_name, else the bench's web port."""
	configured = _configured_url() or frappe.conf.host_name
	if configured:
		return (configured if "://" in configured else f"http://{configured}"), ""
	return f"http://127.0.0.1:{frappe.conf.webserver_port or 8000}", frappe.local.site


def _configured_url() -> str:
	try:
		return frappe.db.get_single_value("Deploy Manager Settings", "site_url") or ""
	except Exception:
		# The database may be the very thing that is down: fall back to the config files.
		return ""


def _row(result: checks.CheckResult) -> dict:
	return {
		"check_name": result.name,
		"category": result.category,
		"status": result.status.title(),
		"value": result.value[:140],
		"threshold": result.threshold[:140],
		"baseline": result.baseline[:140],
		"message": result.message,
		"duration": result.duration,
	}
