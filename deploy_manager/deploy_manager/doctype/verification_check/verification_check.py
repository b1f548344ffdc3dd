# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


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
		phase: DF.Literal["Pre-deploy", "Post-deploy", "Monitoring", "Scheduled", "Manual", "Watchdog"]
		results: DF.Table[VerificationResult]
		site: DF.Data | None
		started_at: DF.Datetime | None
		status: DF.Literal["Queued", "Running", "Completed", "Error"]
		verdict: DF.Literal[
			"", "Confirm", "Fix forward", "Consider rollback", "Rollback", "Rollback immediately"
		]
		verdict_reason: DF.SmallText | None
	# end: auto-generated types
	pass
