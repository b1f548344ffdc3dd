# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class BenchDeploymentSite(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		deployment: DF.Data | None
		note: DF.SmallText | None
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		site: DF.Data | None
		status: DF.Data | None
	# end: auto-generated types
	pass
