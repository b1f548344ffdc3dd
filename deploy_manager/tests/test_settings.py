# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import frappe
import requests
from frappe.tests.utils import FrappeTestCase

from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	SETTINGS,
	get_settings,
)
from deploy_manager.tests.fixtures import api_key_of, free_port, serve, stop, user_with

# Some of what only a System Manager sees and sets: where requests and secrets go, retention.
SYSTEM_MANAGER_ONLY = {
	"site_url": "https://erp.example.com",
	"api_key": "k",
	"external_urls": "https://status.example.com",
	"keep_backups_days": 9,
	"production_url": "https://prod.example.com",
}


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

	def test_urls_that_carry_a_secret_are_https_except_on_this_machine_and_never_metadata(self):
		for field in ("site_url", "production_url", "webhook_url"):
			with self.assertRaisesRegex(frappe.ValidationError, "must be https"):
				self.settings(**{field: "http://erp.example.com"}).save()
		for url in ("http://169.254.169.254/latest", "https://metadata.google.internal/x"):
			with self.assertRaisesRegex(frappe.ValidationError, "refused"):
				self.settings(external_urls=url).save()
			with self.assertRaisesRegex(frappe.ValidationError, "refused"):
				self.settings(site_url=url).save()
		self.settings(site_url="http://dm-test.localhost", external_urls="http://10.0.0.5/status").save()

	def test_moving_a_url_clears_the_secret_stored_for_it_unless_a_new_one_comes_with_it(self):
		self.addCleanup(frappe.db.rollback)
		self.settings(site_url="https://erp.example.com", api_key="k", api_secret="first").save()
		self.settings(site_url="https://attacker.example").save()
		doc = frappe.get_single(SETTINGS)
		self.assertEqual(doc.get_password("api_secret", raise_exception=False), None)
		self.settings(site_url="https://erp2.example.com", api_secret="second").save()
		self.settings(api_key="k2").save()  # nothing moved: the secret stays
		self.assertEqual(frappe.get_single(SETTINGS).get_password("api_secret"), "second")
		self.settings(production_url="https://prod.example.com", production_api_secret="p").save()
		self.settings(production_url="https://other.example.com").save()
		doc = frappe.get_single(SETTINGS)
		self.assertIsNone(doc.get_password("production_api_secret", raise_exception=False))

	def test_a_post_as_api_user_must_be_allowed(self):
		flow = {"path": "/api/method/frappe.client.delete", "method": "POST", "as_api_user": 1}
		with self.assertRaisesRegex(frappe.ValidationError, "POST as API User Allowed"):
			self.settings(key_flows=[flow]).save()
		self.settings(key_flows=[{**flow, "allow_post_as_api_user": 1}]).save()
		self.settings(key_flows=[]).save()

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


class TestSettingsPermissions(FrappeTestCase):
	"""Over HTTP, as the issue found it: a Deploy Manager reads Settings' ordinary fields and writes
	nothing; the fields where requests and secrets go are a System Manager's alone."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.port = free_port()
		cls.web = serve(cls.site, cls.port)
		cls.addClassCleanup(stop, cls.web)
		cls.url = f"http://127.0.0.1:{cls.port}/api/resource/{SETTINGS}/{SETTINGS}"
		cls.stored = {field: frappe.db.get_single_value(SETTINGS, field) for field in SYSTEM_MANAGER_ONLY}
		frappe.db.set_single_value(SETTINGS, dict(SYSTEM_MANAGER_ONLY))  # (it adds "modified")
		frappe.db.commit()
		cls.addClassCleanup(cls.restore)

	@classmethod
	def restore(cls):
		frappe.db.set_single_value(SETTINGS, dict(cls.stored))
		frappe.db.commit()

	def call(self, method, user, **kwargs):
		key, secret = api_key_of(user)
		headers = {"Host": self.site, "Authorization": f"token {key}:{secret}"}
		return requests.request(method, self.url, headers=headers, timeout=30, **kwargs)

	def test_a_deploy_manager_reads_ordinary_fields_and_writes_none(self):
		manager = user_with("dm-settings-manager@example.com", "Deploy Manager")
		read = self.call("GET", manager)
		self.assertEqual(read.status_code, 200, read.text)
		data = read.json()["data"]
		self.assertIn("monitoring_window", data)
		for field in SYSTEM_MANAGER_ONLY:
			# Frappe sends a field above the reader's level as its empty value.
			self.assertIn(data.get(field), (None, "", 0), field)
		for change in ({"site_url": "https://attacker.example"}, {"monitoring_window": 1}):
			answer = self.call("PUT", manager, json=change)
			self.assertEqual(answer.status_code, 403, (change, answer.text))
		shared = requests.post(
			f"http://127.0.0.1:{self.port}/api/method/frappe.share.add",
			data={"doctype": SETTINGS, "name": SETTINGS, "user": manager, "write": 1},
			headers={"Host": self.site, "Authorization": "token {}:{}".format(*api_key_of(manager))},
			timeout=30,
		)
		self.assertEqual(shared.status_code, 403, shared.text)
		self.assertEqual(
			frappe.db.get_single_value(SETTINGS, "site_url", cache=False), "https://erp.example.com"
		)

	def test_a_system_manager_reads_and_writes_every_field(self):
		admin = user_with("dm-settings-admin@example.com", "System Manager")
		data = self.call("GET", admin).json()["data"]
		for field, value in SYSTEM_MANAGER_ONLY.items():
			self.assertEqual(data.get(field), value, field)
		answer = self.call("PUT", admin, json={"site_url": "https://erp2.example.com"})
		self.assertEqual(answer.status_code, 200, answer.text)
		frappe.db.rollback()
		self.assertEqual(
			frappe.db.get_single_value(SETTINGS, "site_url", cache=False), "https://erp2.example.com"
		)

	def test_guest_and_a_plain_user_read_nothing(self):
		guest = requests.get(self.url, headers={"Host": self.site}, timeout=30)
		self.assertEqual(guest.status_code, 403, guest.text)
		plain = self.call("GET", user_with("dm-settings-plain@example.com"))
		self.assertEqual(plain.status_code, 403, plain.text)
