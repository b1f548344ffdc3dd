# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

from urllib.parse import urlsplit

import frappe
from frappe import _
from frappe.model.document import Document

from deploy_manager.core.checks.http import on_site


class DeployManagerSettings(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from deploy_manager.deploy_manager.doctype.deploy_manager_key_flow.deploy_manager_key_flow import (
			DeployManagerKeyFlow,
		)

		api_key: DF.Data | None
		api_secret: DF.Password | None
		backup_max_age: DF.Int
		default_environment: DF.Literal["Production", "Staging", "Development"]
		external_urls: DF.SmallText | None
		keep_backups_days: DF.Int
		key_flows: DF.Table[DeployManagerKeyFlow]
		monitoring_window: DF.Int
		notify_by_email: DF.Check
		performance_samples: DF.Int
		performance_threshold: DF.Percent
		platform: DF.Literal["", "Bench", "Docker", "Kubernetes"]
		pre_deploy_backup: DF.Literal["In Production", "Always", "Never"]
		require_single_session: DF.Check
		rollback_points: DF.Int
		site_url: DF.Data | None
		stop_on_backup_failure: DF.Check
		verification_deadline: DF.Int
		webhook_url: DF.Password | None
		weekly_drill: DF.Check
	# end: auto-generated types

	def validate(self):
		for row in self.key_flows:
			try:
				on_site(row.path or "")
			except ValueError:
				frappe.throw(
					_(
						"Row {0}: key flow path {1} must be a path on this site, starting with a single /"
					).format(row.idx, frappe.bold(row.path))
				)
		for url in (self.external_urls or "").split():
			_require_http_url(url, _("External URL"))
		webhook = self.get_password("webhook_url", raise_exception=False) if self.webhook_url else ""
		if webhook:
			# Said without the URL: it holds the webhook's token.
			_require_http_url(webhook, _("Webhook URL"), show=False)
		if self.api_secret and not self.api_key:
			frappe.throw(_("Set the API Key that goes with the API Secret"))


def _require_http_url(url: str, label: str, show: bool = True):
	parts = urlsplit(url)
	if parts.scheme not in ("http", "https") or not parts.hostname:
		frappe.throw(
			_("{0} {1} must be an http or https URL").format(label, frappe.bold(url) if show else "")
		)
