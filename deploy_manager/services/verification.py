"""Run the check suite against this site and keep the outcome as a Verification Check.

Reading what to check needs only the site's config, not its database: the suite runs even when
the database is down, and the outcome is stored only when the database answers.
"""

import os
from dataclasses import dataclass

import frappe
from frappe.utils import now_datetime

from deploy_manager.core import checks
from deploy_manager.core.checks import dependencies, http, system
from deploy_manager.core.verdict import Verdict, decide

SUITE = [*http.CHECKS, *dependencies.CHECKS, *system.CHECKS]
PHASES = {
	"pre": "Pre-deploy",
	"post": "Post-deploy",
	"monitoring": "Monitoring",
	"scheduled": "Scheduled",
	"manual": "Manual",
}
DEADLINE = 30.0


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
	outcome = run_suite()
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


def run_suite() -> Outcome:
	"""The checks against this site; frappe must be initialised for it, not connected."""
	started = now_datetime()
	results = checks.run(SUITE, site_target(), deadline=DEADLINE)
	return Outcome(results, decide(results), started, now_datetime())


def site_target() -> checks.Target:
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
	return checks.Target(url=url, host=host, extra={"db": db, "redis": redis, "paths": paths})


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
