"""Run the check suite against this site and keep the outcome as a Verification Check.

Reading what to check needs only the site's config, not its database: the suite runs even when
the database is down, and the outcome is stored only when the database answers.
"""

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import frappe
from frappe.utils import add_to_date, now_datetime

from deploy_manager.core import checks
from deploy_manager.core.checks import flows, performance
from deploy_manager.core.formatting import table
from deploy_manager.core.verdict import INCONCLUSIVE, Verdict, decide
from deploy_manager.services import site_facts
from deploy_manager.services.site_state import has_app, on_site

# Checks that look at the site from outside need only its config: they run while the facts the
# others need are read from the database. Key flows and their timings join them from Settings.
OUTSIDE = checks.suite(checks.OUTSIDE)
INSIDE = checks.suite(checks.INSIDE)
SUITE = OUTSIDE + INSIDE
PHASES = {
	"pre": "Pre-deploy",
	"post": "Post-deploy",
	"monitoring": "Monitoring",
	"scheduled": "Scheduled",
	"manual": "Manual",
	"watchdog": "Watchdog",
}

# `verify` exits 3 when a site could not be verified at all (0-2 are the verdicts').
COULD_NOT_VERIFY = 3
# Runs of the site's verification (without a deployment) further apart than this are not one
# episode of a failure.
RECENT_MINUTES = 15


@dataclass
class Outcome:
	results: list[checks.CheckResult]
	verdict: Verdict
	# Seconds; the timestamps are taken when storing, as reading the time zone needs the database.
	duration: float


def verify_sites(
	sites: list[str], phase: str, deployment: str | None = None, say: Callable[[str], None] | None = None
) -> tuple[dict, int]:
	"""Verify each site, store what can be stored; return the report and the worst exit code."""
	reports, exit_code = [], 0
	for site in sites:
		try:
			# Not connected: the suite runs with the database down too.
			with on_site(site, connect=False):
				report = verify_site(phase, deployment, only_if_installed=len(sites) > 1, say=say)
		except Exception as e:
			report = {"site": site, "error": f"could not verify: {e}", "exit_code": COULD_NOT_VERIFY}
		if report:
			exit_code = max(exit_code, report["exit_code"])
			reports.append(report)
	return {"sites": reports}, exit_code


def verify_site(
	phase: str,
	deployment: str | None = None,
	only_if_installed: bool = False,
	say: Callable[[str], None] | None = None,
) -> dict | None:
	"""Run the suite on the initialised site, store it when the database answers, and report. An
	inconclusive verdict (a transient failure seen once) is checked again after Settings' delay,
	until it is decided or has had as many runs again as Settings want in a row.

	With `only_if_installed` (several sites at once), a site without deploy_manager gives None.
	"""
	not_stored = _connect()
	if not not_stored and not has_app():
		if only_if_installed:
			return None
		not_stored = "deploy_manager is not installed on this site"
	config = site_facts.settings()
	failed_before = {} if not_stored else stored_failures(deployment, config.failures_in_a_row)
	runs, name = [], ""
	while True:
		outcome = run_suite(deployment, failed_before)
		runs.append(outcome.verdict)
		if not not_stored:
			try:
				name = store(outcome, phase, deployment).name
				frappe.db.commit()
			except Exception as e:
				with contextlib.suppress(Exception):
					frappe.db.rollback()
				not_stored = str(e)
		if outcome.verdict.action != INCONCLUSIVE or len(runs) > config.failures_in_a_row:
			break
		if say:
			say(
				f"{frappe.local.site}: {', '.join(outcome.verdict.recheck)} failed; checking again in "
				f"{config.recheck_after} s"
			)
		time.sleep(config.recheck_after)
		failed_before = failures_after(outcome, failed_before)
	report = {
		"site": frappe.local.site,
		"phase": PHASES[phase],
		"verdict": outcome.verdict.action,
		"verdict_reason": outcome.verdict.reason,
		"exit_code": outcome.verdict.exit_code,
		"runs": len(runs),
		"results": [_row(r) for r in outcome.results],
	}
	if not_stored:
		report["not_stored"] = not_stored
	else:
		report["name"] = name
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


def run_suite(deployment: str | None = None, failed_before: dict[str, int] | None = None) -> Outcome:
	"""The checks against this site; frappe must be initialised for it, not connected. A transient
	failure counts when it repeats (Settings say how many runs in a row): `failed_before` gives the
	runs just before this one, else they are read from the checks stored for the same deployment."""
	started = time.monotonic()
	config = site_facts.settings()
	if failed_before is None:
		failed_before = stored_failures(deployment, config.failures_in_a_row)
	key_flows = site_facts.key_flows(config)
	outside = site_facts.outside_target(deployment, config)
	timings = performance.checks_for(
		site_facts.endpoints(key_flows), config.performance_samples, outside.request_timeout
	)
	deadline = float(config.verification_deadline)
	with ThreadPoolExecutor(1) as pool:
		# `checks.run` ends by the deadline whatever its checks do, so this thread always ends too.
		first = pool.submit(checks.run, [*OUTSIDE, *flows.checks_for(key_flows), *timings], outside, deadline)
		inside = replace(outside, extra={**outside.extra, **site_facts.inside_facts(deployment, config)})
		rest = checks.run(INSIDE, inside, deadline - (time.monotonic() - started))
		results = first.result() + rest
	verdict = decide(results, failed_before, config.failures_in_a_row)
	return Outcome(results, verdict, round(time.monotonic() - started, 3))


def failures_after(outcome: Outcome, failed_before: dict[str, int]) -> dict[str, int]:
	"""`failed_before` for the run after `outcome`: each failing check's runs in a row, one more."""
	return {r.name: failed_before.get(r.name, 0) + 1 for r in outcome.results if r.status == checks.FAIL}


def stored_failures(deployment: str | None, runs_needed: int) -> dict[str, int]:
	"""Check name -> how many of the latest runs for `deployment` it failed in a row, however far
	apart (a closed site delays its re-checks); for the site without a deployment, over the last
	RECENT_MINUTES only: an hourly run's failure is not the same episode as the next hour's."""
	filters = {"deployment": deployment}
	if not deployment:
		filters = {
			"deployment": ("is", "not set"),
			"finished_at": (">=", add_to_date(now_datetime(), minutes=-RECENT_MINUTES)),
		}
	try:
		latest = frappe.get_all(
			"Verification Check",
			filters=filters,
			order_by="finished_at desc",
			limit=max(1, runs_needed - 1),
			pluck="name",
		)
	except Exception:
		return {}  # the database is down: nothing stored to go by
	runs = {}
	still_failing = None
	for n, name in enumerate(latest, start=1):
		failing = set(
			frappe.get_all(
				"Verification Result",
				filters={"parent": name, "parenttype": "Verification Check", "status": "Fail"},
				pluck="check_name",
			)
		)
		still_failing = failing if still_failing is None else still_failing & failing
		if not still_failing:
			break
		runs.update(dict.fromkeys(still_failing, n))
	return runs


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
		"metric": result.metric,
	}
