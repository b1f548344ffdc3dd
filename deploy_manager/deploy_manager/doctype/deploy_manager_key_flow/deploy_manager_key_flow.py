# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class DeployManagerKeyFlow(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		allow_post_as_api_user: DF.Check
		as_api_user: DF.Check
		expected_status: DF.Int
		expected_text: DF.Data | None
		method: DF.Literal["GET", "POST", "HEAD"]
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		path: DF.Data
		time_limit: DF.Float
	# end: auto-generated types
	pass
