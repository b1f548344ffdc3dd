# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class DeployManagerSettings(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		default_environment: DF.Literal["Production", "Staging", "Development"]
		monitoring_window: DF.Int
		platform: DF.Literal["", "Bench", "Docker", "Kubernetes"]
		site_url: DF.Data | None
	# end: auto-generated types
	pass
