# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class DeploymentApp(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		app: DF.Data
		branch: DF.Data | None
		changed: DF.Check
		dirty: DF.Check
		from_branch: DF.Data | None
		from_commit: DF.Data | None
		from_version: DF.Data | None
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		to_commit: DF.Data | None
		to_version: DF.Data | None
	# end: auto-generated types
	pass
