# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

from frappe.model.document import Document
from frappe.utils import time_diff_in_seconds


class VerificationCheck(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from deploy_manager.deploy_manager.doctype.verification_result.verification_result import (
			VerificationResult,
		)

		deployment: DF.Link | None
		duration: DF.Duration | None
		finished_at: DF.Datetime | None
		override_reason: DF.SmallText | None
		phase: DF.Literal[
			"Preflight", "Pre-deploy", "Post-deploy", "Monitoring", "Scheduled", "Manual", "Watchdog"
		]
		results: DF.Table[VerificationResult]
		site: DF.Data | None
		started_at: DF.Datetime | None
		status: DF.Literal["Queued", "Running", "Completed", "Error"]
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
		if self.started_at and self.finished_at:
			self.duration = max(0.0, time_diff_in_seconds(self.finished_at, self.started_at))
