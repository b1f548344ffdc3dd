# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class VerificationResult(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		baseline: DF.Data | None
		category: DF.Data | None
		check_name: DF.Data | None
		duration: DF.Float
		message: DF.SmallText | None
		metric: DF.Float
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		status: DF.Literal["Pass", "Warn", "Fail", "Error", "Block"]
		threshold: DF.Data | None
		value: DF.Data | None
	# end: auto-generated types
	pass
