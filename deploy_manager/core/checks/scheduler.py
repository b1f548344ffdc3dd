"""The guide's "Scheduler running" and "Background jobs": the scheduler ticks and its jobs succeed.

The facts come gathered in `Target.extra["scheduler"]`: `enabled` (System Settings), `paused`
(`pause_scheduler` in site config), `production`, `dormant` (Frappe's scheduler skips the site for now:
nobody has used it for `dormant_days`, and its jobs ran less than a day ago), `now`, `resumed_at` (when the site was last opened, resumed or
restored: nothing could run before), `tick` (seconds between the scheduler's rounds), `jobs` (one per
Scheduled Job Type: `method`, `due` (its next run by its last one), `jitter` (seconds Frappe may add
at random: Long jobs), `queued` (waiting in the queue or running), `queued_at` (when it was queued),
`ran_at` (last run)),
`failed_since` and `failed_before` (scheduled job method -> failures since the deployment, and in an
equal window before it), and optionally `site`, the site's name for the commands the messages
suggest. A gathering that failed comes as the exception itself.
"""

from datetime import datetime, timedelta

from deploy_manager.core.checks import FAIL, INSIDE, PASS, WARN, CheckResult, Target, gathered, register, some

# A job due is enqueued by the scheduler's next round: it is late after two.
ROUNDS_LATE = 2


def overdue(facts: dict) -> list[str]:
	"""Jobs that should have been enqueued by now and are neither queued nor running. A job due while
	the site was closed or paused, or by schedule times a restore brought back, was due when it
	reopened: only what could have happened since counts."""
	now, resumed = facts["now"], facts["resumed_at"]
	late = timedelta(seconds=ROUNDS_LATE * facts["tick"])
	return sorted(
		job["method"]
		for job in facts["jobs"]
		if not job["queued"] and max(job["due"], resumed) + late + timedelta(seconds=job["jitter"]) < now
	)


def ran_since(facts: dict, since: datetime) -> int:
	"""Jobs the scheduler enqueued or ran since `since`: the evidence that it ticks."""
	return sum(
		1
		for job in facts["jobs"]
		if any(moment and moment >= since for moment in (job["ran_at"], job["queued"] and job["queued_at"]))
	)


def fell_due(facts: dict, late: list[str]) -> datetime:
	"""When the first of the `late` jobs fell due (or the site reopened, if later): a scheduler that
	has enqueued or run nothing since then has stopped, however busy it was before."""
	resumed = facts["resumed_at"]
	return min((max(job["due"], resumed) for job in facts["jobs"] if job["method"] in late), default=resumed)


@register(
	"Scheduler",
	"scheduler",
	"critical",
	looks=INSIDE,
	fails_when="paused in site config (as a failed `bench update` leaves it), disabled in Production "
	"(warns elsewhere), or nothing enqueued or run since the first overdue job fell due (or the site reopened) "
	"while due jobs wait past two scheduler rounds (warns when it ticks but some due jobs did not run, or when they wait because the site "
	"is dormant: Frappe runs a site nobody uses once a day)",
	transient=True,
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
	late, ran = overdue(facts), ran_since(facts, facts["resumed_at"])
	since = f"since {_clock(facts['resumed_at'], facts['now'])}"
	if facts["dormant"]:
		# Frappe's own choice for a site nobody uses, not a stopped scheduler: say so, do not judge.
		dormant = (
			f"dormant: nobody has used the site for {facts.get('dormant_days') or 4} days, so Frappe runs its "
			"scheduled jobs once a day"
		)
		if late:
			return CheckResult(
				WARN,
				f"{dormant}; {len(late)} due job(s) wait ({some(late)}): a login makes the site active",
				"dormant",
			)
		return CheckResult(PASS, f"{dormant}; no due job waits yet", "dormant")
	if late and not ran_since(facts, stopped := fell_due(facts, late)):
		return CheckResult(
			FAIL,
			f"not ticking: nothing enqueued or run since {_clock(stopped, facts['now'])}; {len(late)} due"
			f" job(s) did not run ({some(late)})",
			f"{len(late)} overdue",
		)
	if late:
		return CheckResult(
			WARN,
			f"ticking ({ran} job(s) enqueued or run {since}), but {len(late)} due job(s) did not run "
			f"({some(late)})",
			f"{len(late)} overdue",
		)
	return CheckResult(PASS, f"ticking: {ran} job(s) enqueued or run {since}, none overdue", "0 overdue")


def _clock(moment: datetime, now: datetime) -> str:
	"""When the site reopened, as an operator reads it: the time, and how long ago."""
	minutes = max(0, int((now - moment).total_seconds() // 60))
	return f"{moment:%H:%M:%S} ({minutes} min ago)"


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
