# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase

from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	SETTINGS,
	get_settings,
)


class TestDeployManagerSettings(FrappeTestCase):
	def settings(self, **values):
		doc = frappe.get_single("Deploy Manager Settings")
		doc.update(values)
		return doc

	def test_key_flows_stay_on_the_site(self):
		for path in ("https://evil.example/steal", "//evil.example/x", "app/todo"):
			doc = self.settings(key_flows=[{"path": path}])
			with self.assertRaisesRegex(frappe.ValidationError, "must be a path on this site"):
				doc.save()
		self.settings(key_flows=[{"path": "/api/method/ping", "expected_text": "pong"}]).save()
		self.assertEqual(frappe.get_single("Deploy Manager Settings").key_flows[0].method, "GET")

	def test_urls_must_be_http_and_the_webhook_is_not_echoed(self):
		with self.assertRaisesRegex(frappe.ValidationError, "ftp://files.example"):
			self.settings(external_urls="https://pay.example/status\nftp://files.example").save()
		with self.assertRaises(frappe.ValidationError) as raised:
			self.settings(webhook_url="hooks.slack.example/T000/SECRET").save()
		self.assertNotIn("SECRET", str(raised.exception))

	def test_webhook_url_is_stored_encrypted(self):
		url = "https://hooks.slack.example/services/T000/B000/SECRET"
		self.settings(webhook_url=url).save()
		stored = frappe.db.get_single_value("Deploy Manager Settings", "webhook_url", cache=False)
		self.assertNotIn("SECRET", stored or "")
		self.assertEqual(frappe.get_single("Deploy Manager Settings").get_password("webhook_url"), url)

	def test_an_api_secret_needs_its_key(self):
		with self.assertRaisesRegex(frappe.ValidationError, "API Key"):
			self.settings(api_key="", api_secret="s3cret").save()

	def test_the_production_url_is_https_except_on_this_machine(self):
		with self.assertRaisesRegex(frappe.ValidationError, "must be https"):
			self.settings(production_url="http://erp.example.com").save()
		self.settings(production_url="https://erp.example.com").save()
		self.settings(production_url="http://127.0.0.1:8000").save()

	def test_freeze_windows_need_a_span_and_times_written_hh_mm(self):
		with self.assertRaisesRegex(frappe.ValidationError, "needs dates, a weekday or times"):
			self.settings(freeze_windows=[{"label": "always"}]).save()
		with self.assertRaisesRegex(frappe.ValidationError, "not a time written HH:MM"):
			self.settings(freeze_windows=[{"label": "night", "from_time": "10pm"}]).save()
		with self.assertRaisesRegex(frappe.ValidationError, "ends before it starts"):
			self.settings(
				freeze_windows=[{"label": "x", "from_date": "2026-12-31", "to_date": "2026-12-24"}]
			).save()
		with self.assertRaisesRegex(frappe.ValidationError, "listed twice"):
			self.settings(
				preflight_rules=[
					{"item": "Build", "blocks_in": "Never"},
					{"item": "Build", "blocks_in": "Production"},
				]
			).save()
		self.settings(freeze_windows=[{"label": "night", "from_time": "22:00", "to_time": "06:00"}]).save()
		self.assertEqual(frappe.get_single("Deploy Manager Settings").freeze_windows[0].to_time, "06:00")

	def test_an_unset_environment_is_development_on_a_developers_bench_else_production(self):
		stored = frappe.db.get_single_value(SETTINGS, "default_environment")
		self.addCleanup(frappe.db.set_single_value, SETTINGS, "default_environment", stored)
		frappe.db.set_single_value(SETTINGS, "default_environment", "")
		developer_mode = frappe.conf.developer_mode
		self.addCleanup(setattr, frappe.local.conf, "developer_mode", developer_mode)
		for mode, expected in ((1, "Development"), (0, "Production")):
			frappe.local.conf.developer_mode = mode
			frappe.clear_document_cache(SETTINGS, SETTINGS)
			self.assertEqual(get_settings().default_environment, expected)
		frappe.db.set_single_value(SETTINGS, "default_environment", "Staging")
		frappe.clear_document_cache(SETTINGS, SETTINGS)
		self.assertEqual(get_settings().default_environment, "Staging")
