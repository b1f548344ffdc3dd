# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import functools
import os
from urllib.parse import urlsplit

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, flt, get_bench_path

from deploy_manager.core import environment, outbound
from deploy_manager.core.checks.http import on_site
from deploy_manager.core.preflight import clock

SETTINGS = "Deploy Manager Settings"
# Numbers for which 0 is no choice: no deadline, no samples, no threshold, no maximum age.
DEFAULT_WHEN_ZERO = (
	"failures_in_a_row",
	"recheck_after",
	"verification_deadline",
	"performance_samples",
	"performance_threshold",
	"backup_max_age",
	"lock_wait_timeout",
)


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
		default_environment: DF.Literal["", "Production", "Staging", "Development"]
		external_urls: DF.SmallText | None
		failures_in_a_row: DF.Int
		freeze_windows: DF.Table[DeployManagerFreezeWindow]
		friday_freeze: DF.Literal["Production", "All environments", "Off"]
		keep_backups_days: DF.Int
		key_flows: DF.Table[DeployManagerKeyFlow]
		lock_wait_timeout: DF.Int
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
		recheck_after: DF.Int
		require_single_session: DF.Check
		required_config_keys: DF.SmallText | None
		rollback_points: DF.Int
		site_url: DF.Data | None
		stop_on_backup_failure: DF.Check
		verification_deadline: DF.Int
		watchdog_closed_after: DF.Int
		watchdog_orphan_grace: DF.Int
		watchdog_reopen: DF.Literal["When its owner is provably dead", "Never"]
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
			if row.method == "POST" and row.as_api_user and not row.allow_post_as_api_user:
				# Every five minutes, with that user's rights: a write someone must have meant.
				frappe.throw(
					_("Row {0}: a POST as API user runs only when marked POST as API User Allowed").format(
						row.idx
					)
				)
		for url in (self.external_urls or "").split():
			_require_http_url(url, _("External URL"))
		webhook = self.get_password("webhook_url", raise_exception=False) if self.webhook_url else ""
		if webhook:
			# Said without the URL: it holds the webhook's token.
			_require_http_url(webhook, _("Webhook URL"), show=False, secret=True)
		if self.api_secret and not self.api_key:
			frappe.throw(_("Set the API Key that goes with the API Secret"))
		for url_field, label in (("site_url", _("Site URL")), ("production_url", _("Production Site URL"))):
			if self.get(url_field):
				_require_http_url(self.get(url_field), label, secret=True)
		self._forget_secrets_of_moved_urls()
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

	def _forget_secrets_of_moved_urls(self):
		"""A secret was given for one URL: when the URL moves and no new secret comes with it, the old
		one is cleared, so whoever moves a URL cannot send the stored secret to a host of their own."""
		if self.is_new() or not self.get_doc_before_save():
			return
		for url_field, secret_field in (
			("site_url", "api_secret"),
			("production_url", "production_api_secret"),
		):
			given = self.get(secret_field) and not self.is_dummy_password(self.get(secret_field))
			if self.has_value_changed(url_field) and self.get(secret_field) and not given:
				self.set(secret_field, None)
				frappe.msgprint(
					_("{0} moved: the {1} stored for it is cleared; set it again for the new URL").format(
						_(self.meta.get_label(url_field)), _(self.meta.get_label(secret_field))
					),
					alert=True,
				)


def _require_http_url(url: str, label: str, show: bool = True, secret: bool = False):
	"""An http(s) URL the server may ask; one that carries a secret is https unless on this machine."""
	parts = urlsplit(url)
	shown = frappe.bold(url) if show else ""
	if parts.scheme not in ("http", "https") or not parts.hostname:
		frappe.throw(_("{0} {1} must be an http or https URL").format(label, shown))
	if why := outbound.refusal(url, resolve=False):
		frappe.throw(_("{0} {1} is refused: {2}").format(label, shown, why))
	if secret and parts.scheme != "https" and not outbound.is_loopback(parts.hostname):
		frappe.throw(_("{0} {1} must be https (http only on this machine)").format(label, shown))


def get_settings() -> frappe._dict:
	"""The one way to read Settings: the stored values, each field's default (declared once, in the
	DocType) where none is stored, and only the defaults when the database is down (the verification
	suite still runs then). Password fields hold only a mask here: `get_secret` reads them."""
	try:
		doc = frappe.get_cached_doc(SETTINGS)
		values = frappe._dict(doc.as_dict(no_default_fields=True))
		for table in ("key_flows", "freeze_windows", "preflight_rules"):
			values[table] = [frappe._dict(row.as_dict()) for row in doc.get(table)]
	except Exception:
		values = frappe._dict(key_flows=[], freeze_windows=[], preflight_rules=[])
	for field, default in _defaults().items():
		if values.get(field) in (None, "") or (field in DEFAULT_WHEN_ZERO and not values.get(field)):
			values[field] = default
	values.platform = values.get("platform") or environment.detect_platform(get_bench_path())
	# A developer's bench is not judged as Production unless someone says so.
	values.default_environment = values.get("default_environment") or (
		"Development" if cint(frappe.conf.developer_mode) else "Production"
	)
	return values


def get_secret(field: str) -> str:
	"""A Password field's value, or "" when it is not set. One that is set but cannot be decrypted
	(another encryption_key) raises: a job that needs it must fail where it can be seen."""
	return frappe.get_cached_doc(SETTINGS).get_password(field, raise_exception=False) or ""


def fill_defaults():
	"""After every migrate: a field an upgrade added holds no value, and Frappe sets defaults only for
	a new single (an unset "Email Deploy Managers" would silence rollback alerts)."""
	stored = set(frappe.db.sql("select field from tabSingles where doctype = %s", SETTINGS, pluck=True))
	for field, default in _defaults().items():
		if field not in stored:
			frappe.db.set_single_value(SETTINGS, field, default)


@functools.cache
def _defaults() -> dict:
	"""From the DocType's JSON, not its meta: readable with the database down."""
	numbers = {"Int": cint, "Check": cint, "Float": flt, "Percent": flt}
	meta = frappe.get_file_json(os.path.join(os.path.dirname(__file__), "deploy_manager_settings.json"))
	return {
		f["fieldname"]: numbers.get(f["fieldtype"], str)(f["default"])
		for f in meta["fields"]
		if f.get("default") is not None
	}
