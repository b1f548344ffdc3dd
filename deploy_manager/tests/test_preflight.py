"""The preflight on the test site: the PREPARE checklist stored as a Preflight Verification Check,
a Friday in Production that blocks, an override recorded with its reason, evidence posted by a
pipeline through the API with an API key (and refused without one), and a Staging site's
confirmation."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe
import requests
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_system_timezone, now_datetime

from deploy_manager.core.plan import Move
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.patches import evidence_links_http_only
from deploy_manager.services import notifications, preflight
from deploy_manager.tests.fixtures import (
	ProbeApp,
	api_key_of,
	bench_cmd,
	free_port,
	fresh_snapshot,
	serve,
	stop,
	user_with,
)

KEPT = ("default_environment", "friday_freeze", "required_config_keys", "platform", "production_url")


class TestPreflight(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.probe = ProbeApp.installed_for(cls)
		settings = frappe.get_single(SETTINGS)
		saved = {field: settings.get(field) for field in KEPT}
		cls.addClassCleanup(cls.settings, freeze_windows=[], preflight_rules=[], **saved)
		cls.settings(default_environment="Production", platform="Bench", friday_freeze="Production")
		cls.start, cls.target, _patch = cls.probe.patch_ahead("pass\n")
		cls.moves = [Move("dm_probe", cls.start, cls.target)]

	@classmethod
	def settings(cls, **values):
		doc = frappe.get_single(SETTINGS)
		doc.update(values)
		doc.save()
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.delete("Deploy Evidence", {"commit": self.target})
		frappe.db.commit()

	def local(self, *args) -> datetime:
		return datetime(*args, tzinfo=ZoneInfo(get_system_timezone()))

	def rows(self, check) -> dict[str, tuple[str, str]]:
		return {row.check_name: (row.status, row.message) for row in check.results}

	def test_a_friday_in_production_blocks_and_an_override_is_recorded(self):
		friday = self.local(2026, 11, 27, 10, 0)
		decision, check = preflight.run(self.moves, now=friday)
		self.assertFalse(decision.go)
		stored = frappe.get_doc("Verification Check", check.name)
		self.assertEqual(stored.phase, "Preflight")
		status, message = self.rows(stored)["Freeze windows"]
		self.assertEqual(status, "Block")
		self.assertIn("it is Friday (2026-11-27 10:00", message)
		self.assertTrue(stored.verdict_reason.startswith("Blocked: "), stored.verdict_reason)

		decision, check = preflight.run(self.moves, "payroll fix agreed with finance", now=friday)
		self.assertTrue(decision.go)
		stored = frappe.get_doc("Verification Check", check.name)
		self.assertTrue(stored.override_reason.startswith("payroll fix agreed with finance ("))
		self.assertIn("Blocks overridden (payroll fix agreed with finance)", stored.verdict_reason)

		_decision, check = preflight.run(self.moves, now=self.local(2026, 11, 23, 10, 0))
		self.assertEqual(self.rows(check)["Freeze windows"][0], "Pass")
		self.settings(default_environment="Staging")
		try:
			_decision, check = preflight.run(self.moves, now=friday)
		finally:
			self.settings(default_environment="Production")
		self.assertEqual(self.rows(check)["Freeze windows"][0], "Pass", "the Friday rule is for Production")

	def test_the_command_blocks_in_a_freeze_window_and_records_the_override(self):
		today = frappe.utils.getdate(now_datetime()).strftime("%A")
		# Friday off: the window alone blocks, whatever day the tests run on.
		self.settings(friday_freeze="Off", freeze_windows=[{"label": "month-end close", "weekday": today}])
		self.addCleanup(self.settings, friday_freeze="Production", freeze_windows=[])
		blocked = bench_cmd(
			self.site, "deploy-manager", "preflight", "--app", f"dm_probe@{self.target}", "--json"
		)
		self.assertEqual(blocked.returncode, 1, blocked.stderr)
		report = json.loads(blocked.stdout)
		freeze = next(i for i in report["items"] if i["item"] == "Freeze windows")
		self.assertEqual(freeze["status"], "block")
		self.assertIn("freeze window month-end close", freeze["message"])

		deploy = bench_cmd(self.site, "deploy-manager", "deploy", "--app", f"dm_probe@{self.target}", "--yes")
		self.assertEqual(deploy.returncode, 1)
		self.assertIn("the preflight blocks this deploy", deploy.stderr)
		self.assertEqual(self.probe.head, self.start)
		self.assertFalse(
			frappe.db.exists(
				"Deployment", {"source": "Deploy Command", "creation": (">", report_time(report))}
			)
		)

		overridden = bench_cmd(
			self.site, "deploy-manager", "preflight", "--app", f"dm_probe@{self.target}",
			"--override", "hotfix for the invoice bug",
		)  # fmt: skip
		self.assertEqual(overridden.returncode, 0, overridden.stdout)
		self.assertIn("Blocks overridden (hotfix for the invoice bug)", overridden.stdout)
		name = overridden.stdout.strip().rsplit("(", 1)[1].rstrip(")")
		self.assertIn(
			"hotfix for the invoice bug", frappe.db.get_value("Verification Check", name, "override_reason")
		)

	def test_evidence_clears_code_quality_and_staging_first(self):
		monday = self.local(2026, 11, 23, 10, 0)
		_decision, check = preflight.run(self.moves, now=monday)
		rows = self.rows(check)
		self.assertEqual(rows[f"Code quality: dm_probe {self.target[:10]}"][0], "Block")
		self.assertEqual(
			rows["Staging first"], ("Block", f"not Confirmed on Staging: dm_probe {self.target[:10]}")
		)

		for kind in ("Tests", "Lint", "Review", "Staging Confirmed"):
			frappe.get_doc(
				{"doctype": "Deploy Evidence", "app": "dm_probe", "commit": self.target, "kind": kind,
				 "reason": "run by hand on the release laptop"}
			).insert()  # fmt: skip
		_decision, check = preflight.run(self.moves, now=monday)
		rows = self.rows(check)
		self.assertEqual(rows[f"Code quality: dm_probe {self.target[:10]}"][0], "Pass")
		self.assertEqual(rows["Staging first"][0], "Pass")
		self.assertIn("by hand (run by hand on the release laptop)", rows["Staging first"][1])

		with self.assertRaises(frappe.ValidationError):
			frappe.get_doc(
				{"doctype": "Deploy Evidence", "app": "dm_probe", "commit": self.target, "kind": "Tests"}
			).insert()
		with self.assertRaises(frappe.ValidationError):
			frappe.get_doc(
				{
					"doctype": "Deploy Evidence",
					"app": "dm_probe",
					"commit": "abc",
					"kind": "Tests",
					"reason": "x",
				}
			).insert()
		# Evidence for an older commit says nothing about this one.
		self.settings(preflight_rules=[{"item": "Code quality", "blocks_in": "Never"}])
		self.addCleanup(self.settings, preflight_rules=[])
		_decision, check = preflight.run([Move("dm_probe", self.target, self.start)], now=monday)
		self.assertEqual(self.rows(check)[f"Code quality: dm_probe {self.start[:10]}"][0], "Warn")

	def test_dirty_trees_and_missing_config_keys_block_everywhere(self):
		self.settings(default_environment="Development", required_config_keys="dm_tests_required_key")
		self.addCleanup(self.settings, default_environment="Production", required_config_keys="")
		hooks = self.probe.path / "dm_probe" / "hooks.py"
		original = hooks.read_text()
		hooks.write_text(original + "# edited on the server\n")
		self.addCleanup(hooks.write_text, original)
		decision, check = preflight.run(self.moves)
		rows = self.rows(check)
		self.assertEqual(rows["Clean working trees"], ("Block", "uncommitted changes in dm_probe"))
		self.assertEqual(rows["Environment"], ("Block", "dm_tests_required_key missing from site config"))
		self.assertFalse(decision.go)
		hooks.write_text(original)
		frappe.local.conf["dm_tests_required_key"] = "set"
		try:
			decision, check = preflight.run(self.moves)
		finally:
			frappe.local.conf.pop("dm_tests_required_key")
		self.assertTrue(decision.go, decision.summary())


class TestEvidenceAPI(FrappeTestCase):
	"""A pipeline posts evidence over HTTP with an API key; nothing else may."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.port = free_port()
		cls.web = serve(cls.site, cls.port)
		cls.addClassCleanup(stop, cls.web)
		cls.url = f"http://127.0.0.1:{cls.port}/api/method/deploy_manager.api.post_evidence"
		cls.commit = "e" * 40
		cls.addClassCleanup(cls.delete_evidence)

	@classmethod
	def delete_evidence(cls):
		frappe.db.delete("Deploy Evidence", {"commit": cls.commit})
		frappe.db.commit()

	def post(self, headers=None, cookies=None, **data):
		data = {"app": "dm_probe", "commit": self.commit, "kind": "Tests", "result": "Passed", **data}
		return requests.post(
			self.url, data=data, headers={"Host": self.site, **(headers or {})}, cookies=cookies, timeout=30
		)

	def test_a_valid_key_posts_and_a_wrong_key_or_none_is_refused(self):
		key, secret = api_key_of(user_with("dm-pipeline@example.com", "Deploy Manager"))
		posted = self.post({"Authorization": f"token {key}:{secret}"}, details_url="https://ci.example.com/1")
		self.assertEqual(posted.status_code, 200, posted.text)
		doc = frappe.get_doc("Deploy Evidence", posted.json()["message"]["name"])
		self.assertEqual(
			(doc.source, doc.kind, doc.result, doc.owner),
			("API", "Tests", "Passed", "dm-pipeline@example.com"),
		)
		doc.result = "Failed"
		with self.assertRaises(frappe.ValidationError):
			doc.save()  # what a pipeline said stays as it said it

		self.assertEqual(self.post({"Authorization": f"token {key}:wrong-secret"}).status_code, 401)
		self.assertEqual(self.post().status_code, 403)
		plain_key, plain_secret = api_key_of(user_with("dm-plain-api@example.com"))
		self.assertEqual(self.post({"Authorization": f"token {plain_key}:{plain_secret}"}).status_code, 403)

	def test_only_http_and_https_links_are_stored_every_way_in(self):
		key, secret = api_key_of(user_with("dm-pipeline@example.com", "Deploy Manager"))
		auth = {"Authorization": f"token {key}:{secret}"}
		resource = f"http://127.0.0.1:{self.port}/api/resource/Deploy Evidence"
		stored = frappe.db.count("Deploy Evidence")
		for url in (
			"javascript://ci/%0aalert(document.cookie)",
			"JAVASCRIPT:alert(1)",
			"  javascript:alert(1)",
			"java\tscript:alert(1)",
			"data:text/html,<script>alert(1)</script>",
			"vbscript:msgbox(1)",
		):
			refused = self.post(auth, details_url=url)
			self.assertEqual(refused.status_code, 417, f"{url}: {refused.text}")
			self.assertIn("must be an http or https URL", refused.text)
			by_hand = requests.post(
				resource,
				json={
					"app": "dm_probe",
					"commit": self.commit,
					"kind": "Tests",
					"details_url": url,
					"reason": "ci down",
				},
				headers={"Host": self.site, **auth},
				timeout=30,
			)
			self.assertEqual(by_hand.status_code, 417, f"{url}: {by_hand.text}")
			with self.assertRaises(frappe.ValidationError):
				frappe.get_doc(
					{"doctype": "Deploy Evidence", "app": "dm_probe", "commit": self.commit, "kind": "Lint"}
					| {"details_url": url, "reason": "by hand in Desk"}
				).insert()
			frappe.db.rollback()  # naming took the series row: the web server's next insert needs it
		self.assertEqual(frappe.db.count("Deploy Evidence"), stored)
		posted = self.post(auth, details_url=" https://ci.example.com/runs/7 ")
		self.assertEqual(posted.status_code, 200, posted.text)
		frappe.db.rollback()  # a fresh snapshot, to see what the web server committed
		self.assertEqual(
			frappe.db.get_value("Deploy Evidence", posted.json()["message"]["name"], "details_url"),
			"https://ci.example.com/runs/7",
		)

	def test_an_update_takes_the_script_links_stored_before(self):
		doc = frappe.get_doc(
			{"doctype": "Deploy Evidence", "app": "dm_probe", "commit": self.commit, "kind": "Review"}
			| {"reason": "reviewed by hand", "details_url": "https://ci.example.com/ok"}
		).insert()
		kept = frappe.get_doc(
			{"doctype": "Deploy Evidence", "app": "dm_probe", "commit": self.commit, "kind": "Build"}
			| {"reason": "built by hand", "details_url": "https://ci.example.com/kept"}
		).insert()
		# As written before links were checked.
		frappe.db.set_value("Deploy Evidence", doc.name, "details_url", "javascript://ci/%0aalert(1)")
		evidence_links_http_only.execute()
		self.assertEqual(frappe.db.get_value("Deploy Evidence", doc.name, "details_url"), "")
		self.assertIn(
			"Details URL removed by an update", frappe.db.get_value("Deploy Evidence", doc.name, "reason")
		)
		self.assertEqual(
			frappe.db.get_value("Deploy Evidence", kept.name, "details_url"), "https://ci.example.com/kept"
		)

	def test_a_session_cookie_is_refused(self):
		user = user_with("dm-browser@example.com", "Deploy Manager")
		password = frappe.generate_hash(length=16)
		api_key_of(user, password)
		login = requests.post(
			f"http://127.0.0.1:{self.port}/api/method/login",
			data={"usr": user, "pwd": password},
			headers={"Host": self.site},
			timeout=30,
		)
		self.assertEqual(login.status_code, 200, login.text)
		refused = self.post(cookies=login.cookies)
		self.assertEqual(refused.status_code, 403)
		self.assertIn("API key", refused.text)
		# A header Frappe's own check skips, beside the session sent as a form field: still refused.
		key = frappe.db.get_value("User", user, "api_key")
		sid = login.cookies.get("sid")
		for header in (f"token {key}:wrong secret", f"token {key}:x:y"):
			smuggled = self.post({"Authorization": header}, sid=sid)
			self.assertIn(smuggled.status_code, (401, 403), header)
		self.assertFalse(frappe.db.exists("Deploy Evidence", {"owner": user}))

	def test_a_staging_site_tells_production_what_it_confirmed(self):
		key, secret = api_key_of(user_with("dm-staging@example.com", "Deploy Manager"))
		settings = frappe.get_single(SETTINGS)
		saved = {f: settings.get(f) for f in ("default_environment", "production_url", "production_api_key")}
		settings.update(
			{
				"default_environment": "Staging",
				"production_url": f"http://127.0.0.1:{self.port}",
				"production_api_key": key,
				"production_api_secret": secret,
			}
		)
		settings.save()
		frappe.db.commit()
		self.addCleanup(lambda: (frappe.get_single(SETTINGS).update(saved).save(), frappe.db.commit()))
		deployment = frappe.get_doc(
			{"doctype": "Deployment", "site": self.site, "status": "Monitoring", "source": "Deploy Command",
			 "apps": [{"app": "dm_probe", "from_commit": "d" * 40, "to_commit": self.commit, "changed": 1}]}
		).insert()  # fmt: skip
		frappe.db.commit()
		# The "Production" site here is this site itself, served on loopback.
		notifications.post_confirmation(deployment.name, [{"app": "dm_probe", "commit": self.commit}])
		fresh_snapshot()
		confirmed = frappe.get_all(
			"Deploy Evidence",
			filters={"commit": self.commit, "kind": "Staging Confirmed"},
			fields=["source", "reported_by_site", "result"],
		)
		self.assertEqual(confirmed, [{"source": "API", "reported_by_site": self.site, "result": "Passed"}])


def report_time(report: dict) -> str:
	return frappe.db.get_value("Verification Check", report["preflight"], "creation")
