"""The guide's "Scheduler running" and "Background jobs": the scheduler ticks and its jobs succeed.

The facts come gathered in `Target.extra["scheduler"]`: `enabled` (System Settings), `paused`
(`pause_scheduler` in site config), `production`, `overdue` (Scheduled Job Types due more than a grace
period ago that did not run), `failed_since` and `failed_before` (scheduled job method -> failures
since the deployment, and in an equal window before it), and optionally `site`, the site's name for
the commands the messages suggest. A gathering that failed comes as the exception itself.
"""

from deploy_manager.core.checks import FAIL, INSIDE, PASS, WARN, CheckResult, Target, gathered, register, some


@register(
	"Scheduler",
	"scheduler",
	"critical",
	looks=INSIDE,
	fails_when="paused in site config (as a failed `bench update` leaves it), disabled in Production "
	"(warns elsewhere), or enabled but due Scheduled Job Types have not run for 10 minutes past due",
)
def scheduler(target: Target) -> CheckResult:
	facts = gathered(target, "scheduler", "the scheduler's state")
	if isinstance(facts, CheckResult):
		return facts
	bench = f"bench --site {facts.get('site') or 'SITE'} scheduler"
	if facts["paused"]:
		also = " (and disabled in System Settings)" if not facts["enabled"] else ""
		return CheckResult(
			FAIL,
			f"paused in site config{also}, as a failed bench update leaves it: {bench} resume",
			"paused",
		)
	if not facts["enabled"]:
		# Off is a choice on a development or staging site; in production nothing scheduled runs.
		status = FAIL if facts["production"] else WARN
		return CheckResult(status, f"disabled in System Settings: {bench} enable", "disabled")
	overdue = facts["overdue"]
	if overdue:
		return CheckResult(
			FAIL,
			f"not ticking: {len(overdue)} due job(s) did not run ({some(overdue)})",
			f"{len(overdue)} overdue",
		)
	return CheckResult(PASS, "enabled and ticking: no due job is overdue", "0 overdue")


@register(
	"Scheduled jobs",
	"scheduler",
	"critical",
	looks=INSIDE,
	fails_when="a scheduled job fails since the deploy that did not fail in an equal window before "
	"(warns on old failures)",
)
def scheduled_jobs(target: Target) -> CheckResult:
	facts = gathered(target, "scheduler", "the scheduler's state")
	if isinstance(facts, CheckResult):
		return facts
	since = {method: n for method, n in facts["failed_since"].items() if n}
	before = facts["failed_before"]
	value, baseline = f"{sum(since.values())} failures", f"{sum(before.values())} before"
	new = sorted((m for m in since if not before.get(m)), key=lambda m: -since[m])
	if new:
		shown = some([f"{m} ({since[m]}x)" for m in new])
		return CheckResult(
			FAIL,
			f"{len(new)} scheduled job(s) failing since the deploy that did not fail before: {shown}",
			value,
			baseline=baseline,
		)
	if since:
		shown = some([f"{m} ({since[m]} since, {before[m]} before)" for m in sorted(since)])
		return CheckResult(WARN, f"still failing as before the deploy: {shown}", value, baseline=baseline)
	return CheckResult(PASS, "no scheduled job failed since the deploy", value, baseline=baseline)
