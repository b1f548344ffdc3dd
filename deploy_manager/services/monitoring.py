"""After a deployment: verify it from a background job, watch it through the monitoring window,
and move it to Confirmed or Rollback Recommended (the guide's CONFIRM or ROLLBACK).

| when                                   | outcome                                   |
|----------------------------------------|-------------------------------------------|
| a rollback verdict, at any check       | Rollback Recommended, at once             |
| end of window, Confirm or Fix forward  | Confirmed (the verdict says which)        |
| end of window, Consider rollback       | Rollback Recommended                      |
| within the window, anything else       | Monitoring goes on                        |
"""

import frappe
from frappe.utils import add_to_date, cint, now_datetime

from deploy_manager.core.verdict import CONSIDER_ROLLBACK, ROLLBACK_ACTIONS
from deploy_manager.services.verification import run_suite, store

DEFAULT_WINDOW = 15


def enqueue_post_deploy_verification(deployment: str):
	"""From after_migrate: runs once the migrate commits, and once per deployment."""
	frappe.enqueue(
		"deploy_manager.services.monitoring.verify_deployment",
		queue="short",
		job_id=post_deploy_job_id(deployment),
		deduplicate=True,
		enqueue_after_commit=True,
		deployment=deployment,
	)


def post_deploy_job_id(deployment: str) -> str:
	return f"deploy_manager:post_deploy:{deployment}"


def verify_deployment(deployment: str):
	"""The post-deploy verification: Awaiting Verification -> Verifying -> Monitoring or Rollback Recommended."""
	doc = frappe.get_doc("Deployment", deployment)
	if doc.status != "Awaiting Verification":
		return
	doc.status = "Verifying"
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	outcome = run_suite(deployment)
	check = store(outcome, "post", deployment)
	window = monitoring_window()
	doc.monitoring_until = add_to_date(outcome.finished_at, minutes=window)
	_judge(doc, check, window_over=window == 0)


def monitor_deployments():
	"""Every few minutes: re-verify what is in its monitoring window, and close what has ended."""
	for name in frappe.get_all("Deployment", filters={"status": "Monitoring"}, pluck="name"):
		doc = frappe.get_doc("Deployment", name)
		check = store(run_suite(name), "monitoring", name)
		_judge(doc, check, window_over=not doc.monitoring_until or now_datetime() >= doc.monitoring_until)


def monitoring_window() -> int:
	"""Minutes; Settings that were never saved hold no value yet, which means the default."""
	value = frappe.get_cached_doc("Deploy Manager Settings").monitoring_window
	return DEFAULT_WINDOW if value is None else cint(value)


def verify_on_schedule():
	"""Hourly, with or without a deployment: a site that quietly stops working is noticed."""
	store(run_suite(), "scheduled")
	frappe.db.commit()


def _judge(doc, check, window_over: bool):
	doc.verdict, doc.verdict_reason = check.verdict, check.verdict_reason
	if check.verdict in ROLLBACK_ACTIONS or (window_over and check.verdict == CONSIDER_ROLLBACK):
		doc.status = "Rollback Recommended"
	elif window_over:
		doc.status = "Confirmed"
	else:
		doc.status = "Monitoring"
	doc.add_log(f"{check.phase} verification {check.name}: {check.verdict} ({doc.status})")
	doc.save(ignore_permissions=True)
	frappe.db.commit()
