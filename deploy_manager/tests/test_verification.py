"""`deploy-manager verify` against the test site served by Frappe's own web server on loopback."""

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime
from frappe.utils.background_jobs import is_job_enqueued

from deploy_manager.services import monitoring
from deploy_manager.tests.bench import bench_cmd, free_port, serve


class ServedSiteTestCase(FrappeTestCase):
	"""The test site served by `bench serve` on a free loopback port, which the checks are pointed at."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.port = free_port()
		# A fresh deployment: errors older tests left behind are from before it, hence not new.
		bench_cmd(cls.site, "migrate", "--skip-search-index", check=True)
		cls.server = serve(cls.site, cls.port)
		cls.set_site_url(f"http://127.0.0.1:{cls.port}")

	@classmethod
	def tearDownClass(cls):
		cls.server.kill()
		cls.server.communicate()
		cls.set_site_url("")
		super().tearDownClass()

	@classmethod
	def set_site_url(cls, url: str):
		frappe.db.set_single_value("Deploy Manager Settings", "site_url", url)
		frappe.db.commit()


class TestVerify(ServedSiteTestCase):
	def verify(self, *args: str) -> tuple[dict, int]:
		proc = bench_cmd(self.site, "deploy-manager", "verify", "--json", *args)
		return frappe.parse_json(proc.stdout), proc.returncode

	def test_a_healthy_served_site_is_confirmed_and_stored(self):
		report, code = self.verify()
		[site] = report["sites"]
		self.assertEqual((site["verdict"], code), ("Confirm", 0), site)
		check = frappe.get_doc("Verification Check", site["name"])
		self.assertEqual(check.phase, "Manual")
		self.assertEqual(check.verdict, "Confirm")
		self.assertEqual(
			{r.check_name for r in check.results},
			{"Health endpoint", "Login page", "Database", "Redis", "Error logs", "Disk space", "Memory"},
		)
		self.assertTrue(all(r.status in ("Pass", "Warn") for r in check.results))

	def test_maintenance_mode_is_service_down_and_exits_2(self):
		bench_cmd(self.site, "set-config", "maintenance_mode", "1", check=True)
		try:
			report, code = self.verify("--phase", "post")
		finally:
			bench_cmd(self.site, "set-config", "maintenance_mode", "0", check=True)
		[site] = report["sites"]
		self.assertEqual((site["verdict"], code), ("Rollback immediately", 2))
		self.assertIn("maintenance mode", site["verdict_reason"])
		self.assertEqual(frappe.db.get_value("Verification Check", site["name"], "phase"), "Post-deploy")

	def test_nothing_serving_the_site_is_service_down(self):
		self.set_site_url(f"http://127.0.0.1:{free_port()}")
		try:
			report, code = self.verify()
		finally:
			self.set_site_url(f"http://127.0.0.1:{self.port}")
		self.assertEqual((report["sites"][0]["verdict"], code), ("Rollback immediately", 2))
		self.assertIn("nothing answers", report["sites"][0]["verdict_reason"])

	def test_json_for_all_sites_is_one_document(self):
		proc = bench_cmd("all", "deploy-manager", "verify", "--json")
		report = frappe.parse_json(proc.stdout)
		ours = next(s for s in report["sites"] if s["site"] == self.site)
		self.assertEqual(ours["verdict"], "Confirm")
		self.assertEqual(proc.returncode, max(s["exit_code"] for s in report["sites"]))

	def test_database_down_still_verifies_and_says_it_could_not_store(self):
		config = frappe.get_site_path("site_config.json")
		original = frappe.get_file_json(config)
		bench_cmd(self.site, "set-config", "db_port", str(free_port()), "--parse", check=True)
		try:
			report, code = self.verify()
		finally:
			with open(config, "w") as f:
				f.write(frappe.as_json(original))
		[site] = report["sites"]
		self.assertEqual((site["verdict"], code), ("Rollback immediately", 2))
		self.assertIn("Database: database does not answer", site["verdict_reason"])
		self.assertTrue(site["not_stored"].startswith("the database does not answer"))
		self.assertNotIn("name", site)


class TestPostDeployFlow(ServedSiteTestCase):
	"""From a real migrate to Monitoring and Confirmed, or to Rollback Recommended."""

	def migrated_deployment(self):
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		name = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
		self.assertTrue(is_job_enqueued(monitoring.post_deploy_job_id(name)), "post-deploy job not enqueued")
		return frappe.get_doc("Deployment", name)

	def test_migrate_to_monitoring_to_confirmed(self):
		doc = self.migrated_deployment()
		self.assertEqual(doc.status, "Awaiting Verification")

		monitoring.verify_deployment(doc.name)
		doc.reload()
		self.assertEqual((doc.status, doc.verdict), ("Monitoring", "Confirm"))
		self.assertGreater(doc.monitoring_until, now_datetime())
		post = frappe.get_all(
			"Verification Check", filters={"deployment": doc.name}, fields=["phase", "verdict"]
		)
		self.assertEqual(post, [{"phase": "Post-deploy", "verdict": "Confirm"}])

		monitoring.monitor_deployments()
		doc.reload()
		self.assertEqual(doc.status, "Monitoring", "confirmed before the window ended")

		frappe.db.set_value(
			"Deployment", doc.name, "monitoring_until", add_to_date(now_datetime(), minutes=-1)
		)
		monitoring.monitor_deployments()
		doc.reload()
		self.assertEqual((doc.status, doc.verdict), ("Confirmed", "Confirm"))
		self.assertEqual(
			frappe.db.count("Verification Check", {"deployment": doc.name, "phase": "Monitoring"}), 2
		)

	def test_site_down_after_deploy_recommends_rollback_at_once(self):
		doc = self.migrated_deployment()
		self.set_site_url(f"http://127.0.0.1:{free_port()}")
		try:
			monitoring.verify_deployment(doc.name)
		finally:
			self.set_site_url(f"http://127.0.0.1:{self.port}")
		doc.reload()
		self.assertEqual((doc.status, doc.verdict), ("Rollback Recommended", "Rollback immediately"))
		self.assertIn("Health endpoint", doc.verdict_reason)

	def test_new_errors_after_deploy_recommend_rollback(self):
		doc = self.migrated_deployment()
		title = f"dm_test.checkout_{doc.name}"
		frappe.log_error(title=title, message="Traceback: KeyError: 'price'")
		frappe.db.commit()
		monitoring.verify_deployment(doc.name)
		doc.reload()
		self.assertEqual((doc.status, doc.verdict), ("Rollback Recommended", "Rollback"))
		self.assertIn(f"Error logs: 1 new kind(s) of error since the deploy: {title}", doc.verdict_reason)

	def test_maintenance_mode_defers_the_post_deploy_verification(self):
		doc = self.migrated_deployment()
		bench_cmd(self.site, "set-config", "maintenance_mode", "1", check=True)
		try:
			frappe.local.conf.maintenance_mode = 1
			monitoring.verify_deployment(doc.name)
			doc.reload()
			self.assertEqual(doc.status, "Awaiting Verification")
		finally:
			frappe.local.conf.maintenance_mode = 0
			bench_cmd(self.site, "set-config", "maintenance_mode", "0", check=True)
		monitoring.monitor_deployments()
		doc.reload()
		self.assertEqual((doc.status, doc.verdict), ("Monitoring", "Confirm"))

	def test_scheduled_verification_is_stored_without_a_deployment(self):
		self.migrated_deployment()
		monitoring.verify_on_schedule()
		last = frappe.get_last_doc("Verification Check", filters={"phase": "Scheduled"})
		self.assertFalse(last.deployment)
		self.assertEqual(last.verdict, "Confirm")
