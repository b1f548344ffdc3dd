# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

from frappe.model.document import Document
from frappe.utils import now_datetime, time_diff_in_seconds

from deploy_manager.core.deployments import AppChange

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
		duration: DF.Duration | None
		environment: DF.Literal["Production", "Staging", "Development"]
		failure_reason: DF.SmallText | None
		finished_at: DF.Datetime | None
		host: DF.Data | None
		log: DF.Code | None
		monitoring_until: DF.Datetime | None
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
			"Rolling Back",
			"Rolled Back",
		]
		strategy: DF.Literal["In-place", "Rolling", "Blue-Green", "Canary"]
		touched_tables: DF.SmallText | None
		traceback: DF.Code | None
		triggered_by: DF.Data | None
		verdict: DF.Literal[
			"", "Confirm", "Fix forward", "Consider rollback", "Rollback", "Rollback immediately"
		]
		verdict_reason: DF.SmallText | None
	# end: auto-generated types

	def validate(self):
		self.changed = any(row.changed for row in self.apps) or bool(self.patches)
		if self.started_at and self.finished_at:
			self.duration = max(0.0, time_diff_in_seconds(self.finished_at, self.started_at))

	def set_apps(self, changes: list[AppChange]):
		self.set("apps", [change.as_dict() for change in changes])

	def add_log(self, message: str):
		line = f"{now_datetime():%Y-%m-%d %H:%M:%S} {message}"
		self.log = f"{self.log}\n{line}" if self.log else line

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
