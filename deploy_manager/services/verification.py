"""Run the check suite against this site and keep the outcome as a Verification Check.

Reading what to check needs only the site's config, not its database: the suite runs even when
the database is down, and the outcome is stored only when the database answers.
"""

import os
from dataclasses import dataclass

import frappe
from frappe.utils import add_to_date, now_datetime, time_diff_in_seconds

from deploy_manager.core import checks
from deploy_manager.core.checks import dependencies, errors, http, system
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
# An error title seen in this many days before a deployment is not new (Error Log keeps 14 days).
KNOWN_ERRORS_DAYS = 14


@dataclass
class Outcome:
	results: list[checks.CheckResult]
	verdict: Verdict
	started_at: object
	finished_at: object


def verify_sites(sites: list[str], phase: str, deployment: str | None = None) -> tuple[dict, int]:
	"""Verify each site, store what can be stored; return the report and the worst exit code."""
	reports, exit_code = [], 0
	for site in sites:
		try:
			frappe.init(site=site)
			report = verify_site(phase, deployment)
		finally:
			frappe.destroy()
		exit_code = max(exit_code, report["exit_code"])
		reports.append(report)
	return {"sites": reports}, exit_code


def verify_site(phase: str, deployment: str | None = None) -> dict:
	"""Run the suite on the initialised site, store it when the database answers, and report."""
	try:
		frappe.connect()
		not_stored = ""
	except Exception as e:
		not_stored = f"the database does not answer: {e}"
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
			frappe.db.rollback()
			not_stored = str(e)
	if not_stored:
		report["not_stored"] = not_stored
	return report


def run_suite(deployment: str | None = None) -> Outcome:
	"""The checks against this site; frappe must be initialised for it, not connected."""
	started = now_datetime()
	results = checks.run(SUITE, site_target(deployment), deadline=DEADLINE)
	return Outcome(results, decide(results), started, now_datetime())


def site_target(deployment: str | None = None) -> checks.Target:
	"""What the checks look at. Facts from the database are read here, in this thread (frappe's
	connection is not shared with the checks' threads); one that cannot be read goes in as its error."""
	conf = frappe.conf
	url, host = _site_url(conf)
	db = {
		"host": conf.db_host or "127.0.0.1",
		"port": conf.db_port or 3306,
		"user": conf.db_user or conf.db_name,
		"password": conf.db_password,
		"database": conf.db_name,
	}
	redis = {name: conf[name] for name in ("redis_cache", "redis_queue") if conf.get(name)}
	paths = [os.path.abspath(frappe.get_site_path())]
	extra = {
		"db": db,
		"redis": redis,
		"paths": paths,
		# Without a deployment named, errors are judged against the one whose code runs now.
		"error_logs": _facts(lambda: _error_log_facts(deployment or _current_deployment())),
	}
	return checks.Target(url=url, host=host, extra=extra)


def _facts(gather):
	try:
		return gather()
	except Exception as e:
		return e


def _current_deployment() -> str | None:
	finished = frappe.get_all(
		"Deployment",
		filters={"finished_at": ("is", "set")},
		order_by="finished_at desc",
		limit=1,
		pluck="name",
	)
	return finished[0] if finished else None


def _error_log_facts(deployment: str | None) -> dict:
	"""Error Log entries since the deployment (or, with none, the last hour) against an equal window
	before it; titles not seen in the weeks before it are new."""
	now = now_datetime()
	if deployment:
		started, finished = frappe.db.get_value("Deployment", deployment, ["started_at", "finished_at"])
		since = finished or started
	else:
		started = since = add_to_date(now, hours=-1)
	window = max(60.0, time_diff_in_seconds(now, since))
	after = frappe.get_all("Error Log", filters=[["creation", ">=", since]], pluck="method")
	before = frappe.db.count(
		"Error Log", [["creation", ">=", add_to_date(started, seconds=-window)], ["creation", "<", started]]
	)
	known = frappe.get_all(
		"Error Log",
		filters=[
			["creation", ">=", add_to_date(started, days=-KNOWN_ERRORS_DAYS)],
			["creation", "<", started],
		],
		pluck="method",
		distinct=True,
	)
	return {
		"after": len(after),
		"before": before,
		"window_minutes": window / 60,
		"new_titles": sorted(set(after) - set(known)),
	}


def store(outcome: Outcome, phase: str, deployment: str | None = None):
	verdict = outcome.verdict
	return frappe.get_doc(
		{
			"doctype": "Verification Check",
			"site": frappe.local.site,
			"deployment": deployment,
			"phase": PHASES[phase],
			"status": "Completed",
			"verdict": verdict.action,
			"verdict_reason": verdict.reason,
			"started_at": outcome.started_at,
			"finished_at": outcome.finished_at,
			"results": [_row(r) for r in outcome.results],
		}
	).insert(ignore_permissions=True)


def _site_url(conf) -> tuple[str, str]:
	"""(base URL, Host header): Settings, else the site's host_name, else the bench's web port."""
	configured = _configured_url() or conf.host_name
	if configured:
		return (configured if "://" in configured else f"http://{configured}"), ""
	return f"http://127.0.0.1:{conf.webserver_port or 8000}", frappe.local.site


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
