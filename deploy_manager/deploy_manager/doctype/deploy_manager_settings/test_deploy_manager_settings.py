# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase


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
