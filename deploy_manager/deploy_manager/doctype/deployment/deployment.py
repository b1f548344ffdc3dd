# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import os

import frappe
from frappe.model.document import Document
from frappe.utils import now_datetime, time_diff_in_seconds

from deploy_manager.core import environment
from deploy_manager.core.deployments import AppChange
from deploy_manager.core.verdict import CONSIDER_ROLLBACK, INCONCLUSIVE, ROLLBACK_ACTIONS
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)

# The lifecycle: a Deployment moves through the guide's phases; `set_status` is the only way.
IN_PROGRESS = "In Progress"
FAILED = "Failed"
AWAITING_VERIFICATION = "Awaiting Verification"
VERIFYING = "Verifying"
MONITORING = "Monitoring"
CONFIRMED = "Confirmed"
ROLLBACK_RECOMMENDED = "Rollback Recommended"
ROLLED_BACK = "Rolled Back"
# The state the site was in when deploy_manager arrived: recorded, never deployed, so never judged.
BASELINE = "Baseline"
JUDGED = (MONITORING, CONFIRMED, ROLLBACK_RECOMMENDED)
# Where each status may go next. A failure can be learnt late (a later migrate hook raised after
# ours had closed the record), and any state can be rolled back to the one before it.
TRANSITIONS = {
	IN_PROGRESS: {AWAITING_VERIFICATION, BASELINE, FAILED, ROLLED_BACK},
	AWAITING_VERIFICATION: {VERIFYING, FAILED, ROLLED_BACK},
	# Back to Awaiting Verification: a verification that died while Verifying is run again.
	VERIFYING: {*JUDGED, AWAITING_VERIFICATION, FAILED, ROLLED_BACK},
	MONITORING: {*JUDGED, FAILED, ROLLED_BACK},
	CONFIRMED: {FAILED, ROLLED_BACK},
	ROLLBACK_RECOMMENDED: {FAILED, ROLLED_BACK},
	FAILED: {FAILED, ROLLED_BACK},
	ROLLED_BACK: set(),
	BASELINE: {ROLLED_BACK},
}
# Records that describe the code the site really ran; the next migrate is compared with these.
RECORDED_SOURCES = ("Install", "Bench Migrate", "Deploy Command", "Rollback")

SUMMARY_FIELDS = (
	"name",
	"site",
	"status",
	"source",
	"environment",
	"platform",
	"strategy",
	"started_at",
	"finished_at",
	"duration",
	"triggered_by",
	"verdict",
	"verdict_reason",
	"failure_reason",
	"backup",
	"rollback_of",
	"rolled_back_by",
)
APP_FIELDS = ("app", "from_branch", "branch", "from_version", "from_commit", "to_version", "to_commit")


class Deployment(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from deploy_manager.deploy_manager.doctype.deployment_app.deployment_app import DeploymentApp
		from deploy_manager.deploy_manager.doctype.deployment_patch.deployment_patch import DeploymentPatch

		apps: DF.Table[DeploymentApp]
		backup: DF.Link | None
		bench_deployment: DF.Data | None
		changed: DF.Check
		code_put_back: DF.Check
		duration: DF.Duration | None
		environment: DF.Literal["Production", "Staging", "Development"]
		failure_reason: DF.SmallText | None
		finished_at: DF.Datetime | None
		host: DF.Data | None
		lock_waits: DF.SmallText | None
		log: DF.Code | None
		monitoring_until: DF.Datetime | None
		next_check_at: DF.Datetime | None
		notified_verdict: DF.Data | None
		patches: DF.Table[DeploymentPatch]
		pid: DF.Int
		platform: DF.Literal["Bench", "Docker", "Kubernetes"]
		rollback_of: DF.Link | None
		rolled_back_by: DF.Link | None
		site: DF.Data | None
		source: DF.Literal["Bench Migrate", "Deploy Command", "Rollback", "Manual", "Install"]
		started_at: DF.Datetime | None
		status: DF.Literal[
			"In Progress",
			"Failed",
			"Awaiting Verification",
			"Verifying",
			"Monitoring",
			"Confirmed",
			"Rollback Recommended",
			"Rolled Back",
			"Baseline",
		]
		strategy: DF.Literal["In-place", "Rolling", "Blue-Green", "Canary"]
		touched_tables: DF.SmallText | None
		traceback: DF.Code | None
		triggered_by: DF.Data | None
		verdict: DF.Literal[
			"",
			"Confirm",
			"Fix forward",
			"Consider rollback",
			"Rollback",
			"Rollback immediately",
			"Inconclusive",
		]
		verdict_reason: DF.SmallText | None
	# end: auto-generated types

	def validate(self):
		self.changed = any(row.changed for row in self.apps) or bool(self.patches)
		if self.started_at and self.finished_at:
			self.duration = max(0.0, time_diff_in_seconds(self.finished_at, self.started_at))
		before = self.get_doc_before_save()
		if before and before.status != self.status:
			_check_transition(before.status, self.status)

	def set_status(self, status: str, message: str = ""):
		"""Move to `status` (ValueError when the lifecycle does not allow it), with a log line."""
		if status != self.status:
			_check_transition(self.status, status)
		self.status = status
		if message:
			self.add_log(message)

	def finish(self, what: str, then: str = "", at=None, status: str = AWAITING_VERIFICATION):
		"""The change itself is done (at `at`, default now): Awaiting Verification (or `status`), its
		time logged as "WHAT finished in Ns" and `then`."""
		self.finished_at = at or now_datetime()
		took = time_diff_in_seconds(self.finished_at, self.started_at)
		self.set_status(status, f"{what} finished in {took:.1f}s{then}")

	def fail(self, reason: str, finished_at=None, log: str = ""):
		"""Failed, for `reason`. A failure learnt after the deployment was rolled back (its migrate's
		note read late) is recorded, and the status stays Rolled Back: that is where it ended."""
		self.failure_reason = reason
		self.finished_at = self.finished_at if self.status == ROLLED_BACK else finished_at or now_datetime()
		message = log or f"Marked Failed: {reason}"
		if self.status == ROLLED_BACK:
			self.add_log(f"Found failed after it was rolled back: {message}")
		else:
			self.set_status(FAILED, message)

	def judge(self, verdict: str, reason: str, window_over: bool) -> str:
		"""The verdict of a verification in the guide's terms: a rollback verdict recommends a rollback
		at once, Consider rollback does so when the window is over; else the window goes on or the
		deployment is Confirmed. An inconclusive one keeps it Monitoring, window over or not, until a
		re-check decides. Returns the new status."""
		self.verdict, self.verdict_reason = verdict, reason
		if verdict == INCONCLUSIVE:
			self.set_status(MONITORING)
		elif verdict in ROLLBACK_ACTIONS or (window_over and verdict == CONSIDER_ROLLBACK):
			self.set_status(ROLLBACK_RECOMMENDED)
		else:
			self.set_status(CONFIRMED if window_over else MONITORING)
		return self.status

	def mark_rolled_back(self, rollback: str):
		self.rolled_back_by = rollback
		self.set_status(ROLLED_BACK, f"Rolled back by {rollback}")

	def set_apps(self, changes: list[AppChange]):
		self.set("apps", [change.as_dict() for change in changes])

	def add_log(self, message: str):
		line = f"{now_datetime():%Y-%m-%d %H:%M:%S} {message}"
		self.log = f"{self.log}\n{line}" if self.log else line

	def add_lock_waits(self, step: str, reports: list[str]):
		"""What the lock guard said during `step`: in the log, and in Lock Waits for the checks."""
		for report in reports:
			line = f"{step}: {report}"
			self.add_log(line)
			self.lock_waits = f"{self.lock_waits}\n{line}" if self.lock_waits else line

	def summary(self) -> dict:
		"""The one JSON shape of a Deployment, for `--json` and for pipelines."""
		return {
			**{field: self.get(field) for field in SUMMARY_FIELDS},
			"changed": bool(self.changed),
			"apps": [
				{
					**{f: row.get(f) for f in APP_FIELDS},
					"changed": bool(row.changed),
					"dirty": bool(row.dirty),
				}
				for row in self.apps
			],
			"patches": [{"patch": row.patch, "status": row.status} for row in self.patches],
			"touched_tables": (self.touched_tables or "").splitlines(),
			"age_seconds": time_diff_in_seconds(now_datetime(), self.started_at) if self.started_at else None,
		}


def start(source: str, changes: list[AppChange], **fields) -> Deployment:
	"""The one way a Deployment begins: In Progress, by this process, on this host; not yet inserted."""
	settings = get_settings()
	doc = frappe.get_doc(
		{
			"doctype": "Deployment",
			"site": frappe.local.site,
			"status": IN_PROGRESS,
			"source": source,
			"environment": settings.default_environment,
			"platform": settings.platform,
			"strategy": "In-place",
			"started_at": now_datetime(),
			"triggered_by": environment.operator(),
			"host": environment.hostname(),
			"pid": os.getpid(),
			**fields,
		}
	)
	doc.set_apps(changes)
	return doc


def _check_transition(old: str, new: str):
	if new not in TRANSITIONS.get(old, ()):
		raise ValueError(f"a Deployment cannot go from {old} to {new}")
