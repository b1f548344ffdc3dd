# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class BackupRecord(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from deploy_manager.deploy_manager.doctype.backup_app.backup_app import BackupApp
		from deploy_manager.deploy_manager.doctype.backup_file.backup_file import BackupFile

		apps: DF.Table[BackupApp]
		deployment: DF.Link | None
		drill_duration: DF.Duration | None
		drill_message: DF.SmallText | None
		drill_status: DF.Literal["Not Drilled", "Passed", "Failed"]
		drilled_at: DF.Datetime | None
		encrypted: DF.Check
		files: DF.Table[BackupFile]
		keep_reason: DF.SmallText | None
		location: DF.Data | None
		rollback_point: DF.Check
		site: DF.Data | None
		status: DF.Literal["Not Verified", "Verified", "Corrupt", "Missing", "Unverifiable", "Deleted"]
		status_message: DF.SmallText | None
		table_counts: DF.Code | None
		taken_at: DF.Datetime | None
		trigger: DF.Literal["Pre-deploy", "Scheduled", "Manual", "Imported"]
		verified_at: DF.Datetime | None
	# end: auto-generated types
	pass
