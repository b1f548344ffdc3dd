# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

# import frappe
from frappe.model.document import Document


class BackupFile(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		encrypted: DF.Check
		file_type: DF.Literal["Database", "Public Files", "Private Files", "Site Config"]
		parent: DF.Data
		parentfield: DF.Data
		parenttype: DF.Data
		path: DF.Data | None
		sha256: DF.Data | None
		size: DF.Int
	# end: auto-generated types
	pass
