# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class DeployManagerPreflightRule(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		blocks_in: DF.Literal["Production", "Production and Staging", "Every environment", "Never"]
		item: DF.Literal[
			"Code quality",
			"Build",
			"Environment",
			"Safety",
			"One change at a time",
			"Freeze windows",
			"Staging first",
			"Clean working trees",
		]
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
	# end: auto-generated types
	pass
