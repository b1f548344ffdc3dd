# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

from urllib.parse import urlsplit

import frappe
from frappe import _
from frappe.model.document import Document

from deploy_manager.core.checks.http import on_site
from deploy_manager.core.preflight import clock


class DeployManagerSettings(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from deploy_manager.deploy_manager.doctype.deploy_manager_freeze_window.deploy_manager_freeze_window import (
			DeployManagerFreezeWindow,
		)
		from deploy_manager.deploy_manager.doctype.deploy_manager_key_flow.deploy_manager_key_flow import (
			DeployManagerKeyFlow,
		)
		from deploy_manager.deploy_manager.doctype.deploy_manager_preflight_rule.deploy_manager_preflight_rule import (
			DeployManagerPreflightRule,
		)

		api_key: DF.Data | None
		api_secret: DF.Password | None
		backup_max_age: DF.Int
		default_environment: DF.Literal["Production", "Staging", "Development"]
		external_urls: DF.SmallText | None
		freeze_windows: DF.Table[DeployManagerFreezeWindow]
		friday_freeze: DF.Literal["Production", "All environments", "Off"]
		keep_backups_days: DF.Int
		key_flows: DF.Table[DeployManagerKeyFlow]
		monitoring_window: DF.Int
		notify_by_email: DF.Check
		performance_samples: DF.Int
		performance_threshold: DF.Percent
		platform: DF.Literal["", "Bench", "Docker", "Kubernetes"]
		pre_deploy_backup: DF.Literal["In Production", "Always", "Never"]
		preflight_rules: DF.Table[DeployManagerPreflightRule]
		production_api_key: DF.Data | None
		production_api_secret: DF.Password | None
		production_url: DF.Data | None
		require_single_session: DF.Check
		required_config_keys: DF.SmallText | None
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
		if self.production_url:
			_require_http_url(self.production_url, _("Production Site URL"))
			parts = urlsplit(self.production_url)
			if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
				# The API secret goes with every confirmation.
				frappe.throw(_("Production Site URL must be https (http only on this machine)"))
		for row in self.freeze_windows:
			if not any((row.from_date, row.to_date, row.weekday, row.from_time, row.to_time)):
				frappe.throw(
					_("Freeze window {0} needs dates, a weekday or times").format(frappe.bold(row.label))
				)
			for text in (row.from_time, row.to_time):
				try:
					clock(text)
				except ValueError:
					frappe.throw(
						_("Freeze window {0}: {1} is not a time written HH:MM").format(row.label, text)
					)
			if row.from_date and row.to_date and row.to_date < row.from_date:
				frappe.throw(_("Freeze window {0} ends before it starts").format(frappe.bold(row.label)))
		items = [row.item for row in self.preflight_rules]
		if twice := {item for item in items if items.count(item) > 1}:
			frappe.throw(
				_("One preflight rule per item: {0} is listed twice").format(", ".join(sorted(twice)))
			)


def _require_http_url(url: str, label: str, show: bool = True):
	parts = urlsplit(url)
	if parts.scheme not in ("http", "https") or not parts.hostname:
		frappe.throw(
			_("{0} {1} must be an http or https URL").format(label, frappe.bold(url) if show else "")
		)
