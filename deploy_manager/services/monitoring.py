"""After a deployment: verify it from a background job, watch it through the monitoring window,
and let `Deployment.judge` move it to Monitoring, Confirmed or Rollback Recommended (the guide's
CONFIRM or ROLLBACK); alert when it recommends a rollback.

Nothing here waits for the site's scheduler, which a closed, paused or dormant site does not run
(Frappe runs a dormant site's jobs once a day): the post-deploy job waits for the site to reopen,
and each re-check is a job queued for its time, both by hopping through the queue in short sleeps
(`_hop`). The five-minute sweep only picks up what such a chain lost (a queue flushed, a worker
killed mid-job).
"""

import time

import frappe
from frappe.utils import add_to_date, cint, get_datetime, now_datetime, time_diff_in_seconds

from deploy_manager.core.verdict import INCONCLUSIVE
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import notifications
from deploy_manager.services.verification import run_suite, store

# A post-deploy verification takes under a minute: one Verifying this long has died.
STUCK_AFTER_MINUTES = 10
# How long one waiting job holds its worker. A restart of the workers (bench update's, a deploy's)
# waits for the job in hand: never longer than this.
HOP_SECONDS = 10
# The post-deploy job waits this long for the site to reopen and its scheduler to resume; then it
# verifies what it finds: a site left closed or paused is what a failed `bench update` leaves.
REOPEN_WAIT_MINUTES = 15
# Re-checks through the monitoring window: three in it at least, none closer than this...
MIN_INTERVAL_SECONDS = 20
# ... and none further apart than this.
MAX_INTERVAL_SECONDS = 300
# A re-check's time passed this long ago with nothing run: its chain was lost, the sweep runs it.
LOST_AFTER_SECONDS = 120
# Two rounds of the five-minute sweep: what it has left waiting this long, it will not pick up.
UNSWEPT_AFTER_MINUTES = 10


def enqueue_post_deploy_verification(deployment: str):
	"""From after_migrate: runs once the migrate commits, and once per deployment.

	A queue that is down must not undo the record: the five-minute sweep verifies it later.
	"""
	try:
		_enqueue(
			"verify_deployment", post_deploy_job_id(deployment), after_commit=True, deployment=deployment
		)
	except Exception:
		frappe.log_error(title="deploy_manager: post-deploy verification could not be queued")


def post_deploy_job_id(deployment: str) -> str:
	return f"deploy_manager:post_deploy:{deployment}"


def verify_deployment(deployment: str, hop: int = 0):
	"""The post-deploy verification: Awaiting Verification -> Verifying -> Monitoring or Rollback
	Recommended. While the site is closed or its scheduler paused (`bench update` keeps them so until it
	has built and restarted) it waits for them to clear: judging now would only see its 503. After
	REOPEN_WAIT_MINUTES it verifies what it finds: a site left closed is what a failed update leaves."""
	if _closed():
		if hop * HOP_SECONDS < REOPEN_WAIT_MINUTES * 60:
			if hop == 0:
				_log(deployment, "the site is closed or its scheduler paused: verified as soon as both clear")
			_hop(
				"verify_deployment",
				f"{post_deploy_job_id(deployment)}:{hop + 1}",
				deployment=deployment,
				hop=hop + 1,
			)
			return
		_log(deployment, f"still closed or paused after {REOPEN_WAIT_MINUTES} min: verified as it is")
	# The job and the five-minute sweep may start at once: the row lock lets one of them claim it.
	if (
		frappe.db.get_value("Deployment", deployment, "status", for_update=True)
		!= lifecycle.AWAITING_VERIFICATION
	):
		return
	doc = frappe.get_doc("Deployment", deployment)
	doc.set_status(lifecycle.VERIFYING, f"the site is open: verifying after {hop} wait(s)" if hop else "")
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	check = store(run_suite(deployment), "post", deployment)
	window = monitoring_window()
	_judge(
		doc, check, window_over=window == 0, monitoring_until=add_to_date(check.finished_at, minutes=window)
	)


def _closed() -> bool:
	return bool(frappe.conf.maintenance_mode or frappe.conf.pause_scheduler)


def watch(deployment: str, due: str, hop: int = 0):
	"""A re-check of a deployment in its window, queued for `due`: waits for its time (and, for a
	while, for the site to be open), then verifies. Ends at once when a later judgement has set another
	time."""
	due = get_datetime(due)
	late = time_diff_in_seconds(now_datetime(), due)
	closed = _closed()
	# A closed site's database may be in the middle of a restore: it is not read then.
	if not closed:
		status, next_check = frappe.db.get_value("Deployment", deployment, ["status", "next_check_at"])
		if status != lifecycle.MONITORING or next_check != due:
			return
	if late < 0 or (closed and late < REOPEN_WAIT_MINUTES * 60):
		_hop(
			"watch", _watch_job_id(deployment, due, hop + 1), deployment=deployment, due=str(due), hop=hop + 1
		)
		return
	recheck(deployment, due)


def recheck(deployment: str, due=None):
	"""Verify a deployment in its window now and judge it: with `due`, only if that is still the time
	set for it; without, only if its re-check is lost (none set, or LOST_AFTER_SECONDS late). The claim
	(a lease on `next_check_at`) keeps the chain, the sweep and a deploy command waiting for its verdict
	from running it twice."""
	due = get_datetime(due) if due else None
	status, next_check = frappe.db.get_value(
		"Deployment", deployment, ["status", "next_check_at"], for_update=True
	)
	lost = not next_check or time_diff_in_seconds(now_datetime(), next_check) > LOST_AFTER_SECONDS
	if status != lifecycle.MONITORING or (next_check != due if due else not lost):
		frappe.db.commit()
		return
	doc = frappe.get_doc("Deployment", deployment)
	frappe.db.set_value(
		"Deployment",
		deployment,
		"next_check_at",
		add_to_date(now_datetime(), minutes=STUCK_AFTER_MINUTES),
		update_modified=False,
	)
	frappe.db.commit()
	check = store(run_suite(deployment), "monitoring", deployment)
	_judge(doc, check, window_over=_window_over(doc))


def monitor_deployments():
	"""Every five minutes: verify deployments still waiting for it, and re-check those in their
	monitoring window whose re-check was lost."""
	_verify_waiting()
	lost = add_to_date(now_datetime(), seconds=-LOST_AFTER_SECONDS)
	for name in frappe.get_all(
		"Deployment",
		filters={"status": lifecycle.MONITORING},
		or_filters=[["next_check_at", "is", "not set"], ["next_check_at", "<", lost]],
		pluck="name",
	):
		recheck(name)


def unswept() -> list[str]:
	"""What the sweep should have picked up UNSWEPT_AFTER_MINUTES ago and has not, so the scheduler does
	not run it: the current deployment still waiting for its post-deploy verification (or Verifying),
	deployments in their monitoring window whose re-check was lost."""
	long_ago = add_to_date(now_datetime(), minutes=-UNSWEPT_AFTER_MINUTES)
	waiting = [
		current.name
		for current in _latest()
		if current.status in (lifecycle.AWAITING_VERIFICATION, lifecycle.VERIFYING)
		and current.modified < long_ago
	]
	return waiting + frappe.get_all(
		"Deployment",
		filters={"status": lifecycle.MONITORING},
		or_filters=[["next_check_at", "is", "not set"], ["next_check_at", "<", long_ago]],
		pluck="name",
	)


def _latest() -> list:
	"""The current deployment (what the site runs), as a list of none or one."""
	return frappe.get_all(
		"Deployment",
		filters={"status": ("not in", (lifecycle.IN_PROGRESS, lifecycle.BASELINE))},
		fields=["name", "status", "modified"],
		order_by="creation desc",
		limit=1,
	)


def _verify_waiting():
	"""The current deployment, if its post-deploy job never ran (no worker, queue down, maintenance
	mode) or died while Verifying. Older ones waiting are superseded: the site runs newer code."""
	latest = _latest()
	if not latest:
		return
	name, status = latest[0].name, latest[0].status
	if status == lifecycle.VERIFYING and latest[0].modified < add_to_date(
		now_datetime(), minutes=-STUCK_AFTER_MINUTES
	):
		doc = frappe.get_doc("Deployment", name)
		doc.set_status(lifecycle.AWAITING_VERIFICATION, "Verifying stopped: verified again")
		doc.save(ignore_permissions=True)
		status = doc.status
	if status == lifecycle.AWAITING_VERIFICATION:
		verify_deployment(name)


def monitoring_window() -> int:
	"""Minutes; Settings that were never saved hold no value yet, which means the default."""
	return cint(get_settings().monitoring_window)


def verify_on_schedule(recheck_of: str | None = None):
	"""Hourly, with or without a deployment: a site that quietly stops working is noticed. An
	inconclusive run is checked again once, soon."""
	check = store(run_suite(), "scheduled")
	frappe.db.commit()
	if check.verdict == INCONCLUSIVE and not recheck_of:
		due = add_to_date(now_datetime(), seconds=cint(get_settings().recheck_after))
		_enqueue("watch_site", _watch_job_id("site", due, 0), check=check.name, due=str(due))


def watch_site(check: str, due: str, hop: int = 0):
	"""The re-check of an inconclusive scheduled verification, queued for `due`."""
	due = get_datetime(due)
	late = time_diff_in_seconds(now_datetime(), due)
	if late < 0 or (_closed() and late < REOPEN_WAIT_MINUTES * 60):
		_hop("watch_site", _watch_job_id("site", due, hop + 1), check=check, due=str(due), hop=hop + 1)
		return
	verify_on_schedule(recheck_of=check)


def enqueue_verification(deployment: str | None, user: str):
	""" "Verify now" from Desk: one queued verification per site (and deployment) at a time. None
	when one is already queued or running."""
	return frappe.enqueue(
		"deploy_manager.services.monitoring.verify_on_request",
		queue="short",
		job_id=f"deploy_manager:verify_now:{deployment or 'site'}",
		deduplicate=True,
		deployment=deployment,
		user=user,
	)


def verify_on_request(deployment: str | None, user: str):
	"""A manual verification; a deployment still being watched is judged by it as by a re-check."""
	outcome = run_suite(deployment)
	check = store(outcome, "manual", deployment)
	if deployment:
		doc = frappe.get_doc("Deployment", deployment)
		if doc.status == lifecycle.MONITORING:
			_judge(doc, check, window_over=_window_over(doc))
	frappe.db.commit()
	frappe.publish_realtime(
		"deploy_manager_verified",
		{
			"name": check.name,
			"deployment": deployment,
			"verdict": check.verdict,
			"reason": check.verdict_reason,
		},
		user=user,
		after_commit=True,
	)


def _window_over(doc) -> bool:
	return bool(doc.monitoring_until) and now_datetime() >= doc.monitoring_until


def _judge(doc, check, window_over: bool, monitoring_until=None):
	# The check is stored whatever comes of it. Then locked and read afresh until the commit below: of
	# two judges at once (a re-check and Verify now, or a rollback marking it), the second sees what
	# the first decided, and alerts are sent once. (Committed first: in a transaction that has read
	# before, MariaDB would show the reload its older snapshot.)
	frappe.db.commit()
	frappe.db.get_value("Deployment", doc.name, "name", for_update=True)
	doc.reload()
	if doc.status not in (lifecycle.VERIFYING, lifecycle.MONITORING):
		frappe.db.commit()
		return
	if monitoring_until:
		doc.monitoring_until = monitoring_until
	status = doc.judge(check.verdict, check.verdict_reason, window_over)
	if status == lifecycle.ROLLBACK_RECOMMENDED:
		notifications.rollback_recommended(doc)
	elif status == lifecycle.CONFIRMED:
		notifications.confirmed(doc)
	doc.next_check_at = _next_check(doc, check.verdict) if status == lifecycle.MONITORING else None
	doc.add_log(
		f"{check.phase} verification {check.name}: {check.verdict} ({doc.status})"
		+ (f"; next check at {doc.next_check_at:%H:%M:%S}" if doc.next_check_at else "")
	)
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	if doc.next_check_at:
		due = get_datetime(doc.next_check_at)
		_enqueue("watch", _watch_job_id(doc.name, due, 0), deployment=doc.name, due=str(due))


def _next_check(doc, verdict: str):
	"""Soon after an inconclusive verdict (Settings' delay); else through the window, three re-checks
	in it at least, the last at its end."""
	now = now_datetime()
	settings = get_settings()
	if verdict == INCONCLUSIVE:
		return add_to_date(now, seconds=cint(settings.recheck_after))
	interval = min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, cint(settings.monitoring_window) * 20))
	return min(add_to_date(now, seconds=interval), get_datetime(doc.monitoring_until))


def _watch_job_id(name: str, due, hop: int) -> str:
	return f"deploy_manager:watch:{name}:{get_datetime(due):%Y%m%d%H%M%S}:{hop}"


def _hop(method: str, job_id: str, **kwargs):
	"""Sleep a little, then queue `method` again: a wait that holds no worker for long, survives the
	workers' restart (the job waits in Redis), and needs no scheduler."""
	time.sleep(HOP_SECONDS)
	_enqueue(method, job_id, **kwargs)


def _enqueue(method: str, job_id: str, after_commit: bool = False, **kwargs):
	frappe.enqueue(
		f"deploy_manager.services.monitoring.{method}",
		queue="short",
		job_id=job_id,
		deduplicate=True,
		enqueue_after_commit=after_commit,
		**kwargs,
	)


def _log(deployment: str, message: str):
	doc = frappe.get_doc("Deployment", deployment, for_update=True)
	doc.add_log(message)
	doc.save(ignore_permissions=True)
	frappe.db.commit()
