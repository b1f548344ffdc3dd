"""After a deployment: verify it from a background job, watch it through the monitoring window,
and let `Deployment.judge` move it to Monitoring, Confirmed or Rollback Recommended (the guide's
CONFIRM or ROLLBACK); alert when it recommends a rollback.
"""

import frappe
from frappe.utils import add_to_date, cint, now_datetime

from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import notifications
from deploy_manager.services.verification import run_suite, store

# A post-deploy verification takes under a minute: one Verifying this long has died.
STUCK_AFTER_MINUTES = 10


def enqueue_post_deploy_verification(deployment: str):
	"""From after_migrate: runs once the migrate commits, and once per deployment.

	A queue that is down must not undo the record: the five-minute sweep verifies it later.
	"""
	try:
		frappe.enqueue(
			"deploy_manager.services.monitoring.verify_deployment",
			queue="short",
			job_id=post_deploy_job_id(deployment),
			deduplicate=True,
			enqueue_after_commit=True,
			deployment=deployment,
		)
	except Exception:
		frappe.log_error(title="deploy_manager: post-deploy verification could not be queued")


def post_deploy_job_id(deployment: str) -> str:
	return f"deploy_manager:post_deploy:{deployment}"


def verify_deployment(deployment: str):
	"""The post-deploy verification: Awaiting Verification -> Verifying -> Monitoring or Rollback Recommended."""
	if frappe.conf.maintenance_mode:
		# `bench update` keeps the site in maintenance until it has built and restarted: judging
		# now would only see its 503. The sweep comes back when the site is open again.
		return
	# The job and the five-minute sweep may start at once: the row lock lets one of them claim it.
	if (
		frappe.db.get_value("Deployment", deployment, "status", for_update=True)
		!= lifecycle.AWAITING_VERIFICATION
	):
		return
	doc = frappe.get_doc("Deployment", deployment)
	doc.set_status(lifecycle.VERIFYING)
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	outcome = run_suite(deployment)
	check = store(outcome, "post", deployment)
	window = monitoring_window()
	_judge(
		doc, check, window_over=window == 0, monitoring_until=add_to_date(check.finished_at, minutes=window)
	)


def monitor_deployments():
	"""Every five minutes: verify deployments still waiting for it, re-verify those in their
	monitoring window, and close the windows that have ended."""
	_verify_waiting()
	for name in frappe.get_all("Deployment", filters={"status": lifecycle.MONITORING}, pluck="name"):
		doc = frappe.get_doc("Deployment", name)
		check = store(run_suite(name), "monitoring", name)
		_judge(doc, check, window_over=not doc.monitoring_until or now_datetime() >= doc.monitoring_until)


def _verify_waiting():
	"""The current deployment, if its post-deploy job never ran (no worker, queue down, maintenance
	mode) or died while Verifying. Older ones waiting are superseded: the site runs newer code."""
	latest = frappe.get_all(
		"Deployment",
		filters={"status": ("!=", lifecycle.IN_PROGRESS)},
		fields=["name", "status", "modified"],
		order_by="creation desc",
		limit=1,
	)
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


def verify_on_schedule():
	"""Hourly, with or without a deployment: a site that quietly stops working is noticed."""
	store(run_suite(), "scheduled")
	frappe.db.commit()


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
			_judge(
				doc, check, window_over=bool(doc.monitoring_until) and now_datetime() >= doc.monitoring_until
			)
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


def _judge(doc, check, window_over: bool, monitoring_until=None):
	# Locked and read afresh until the commit below: of two judges at once (a re-check and Verify
	# now), the second sees what the first decided, and alerts are sent once.
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
	doc.add_log(f"{check.phase} verification {check.name}: {check.verdict} ({doc.status})")
	doc.save(ignore_permissions=True)
	frappe.db.commit()
