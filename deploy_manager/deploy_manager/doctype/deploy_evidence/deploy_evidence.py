# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import re

import frappe
from frappe import _
from frappe.model.document import Document

from deploy_manager.core import outbound


class DeployEvidence(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		app: DF.Data
		commit: DF.Data
		details_url: DF.Data | None
		kind: DF.Literal["Tests", "Lint", "Review", "Build", "Staging Confirmed"]
		reason: DF.SmallText | None
		reported_by_site: DF.Data | None
		result: DF.Literal["Passed", "Failed"]
		source: DF.Literal["API", "By hand"]
	# end: auto-generated types

	def validate(self):
		if not self.is_new():
			# What a pipeline said stays as it said it: a correction is new evidence.
			frappe.throw(_("Deploy Evidence cannot be changed: add new evidence instead"))
		if not self.flags.posted_through_api:
			# Only deploy_manager.api.post_evidence, which checked the caller's API key, says API.
			self.source = "By hand"
		self.commit = (self.commit or "").strip().lower()
		if not re.fullmatch(r"[0-9a-f]{40}", self.commit):
			frappe.throw(_("Commit must be a full 40-character git commit hash"))
		self.details_url = (self.details_url or "").strip()
		if self.details_url and (why := outbound.link_refusal(self.details_url)):
			# Rendered as a link for a System Manager: a script URL would run with their session.
			frappe.throw(_("Details URL must be an http or https URL: {0}").format(why))
		if self.source == "By hand" and not (self.reason or "").strip():
			frappe.throw(_("Evidence set by hand needs a reason"))
