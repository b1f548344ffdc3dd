"""Verification on the test site run as a production bench runs it: Frappe's own web server on a free
loopback port, a worker for each of the short, default and long queues, the scheduler ticking, a
recent backup and a non-default Administrator password. The post-deploy jobs run in the real workers."""

import frappe
import requests
from frappe.utils import add_to_date, now_datetime
from frappe.utils.background_jobs import is_job_enqueued

from deploy_manager.api import verify_now
from deploy_manager.services import monitoring, notifications, verification
from deploy_manager.tests.fixtures import (
	RECHECK_AFTER,
	HealthySiteTestCase,
	api_key_of,
	bench_cmd,
	free_port,
	fresh_snapshot,
	judged,
	serve,
	stop,
	user_with,
	wait_until,
	webhook_receiver,
)


class TestVerify(HealthySiteTestCase):
	def verify(self, *args: str) -> tuple[dict, int]:
		proc = bench_cmd(self.site, "deploy-manager", "verify", "--json", *args)
		return frappe.parse_json(proc.stdout), proc.returncode

	def test_a_healthy_site_is_confirmed_and_stored_with_every_check(self):
		report, code = self.verify()
		[site] = report["sites"]
		self.assertEqual((site["verdict"], code), ("Confirm", 0), site)
		check = frappe.get_doc("Verification Check", site["name"])
		self.assertEqual((check.phase, check.verdict), ("Manual", "Confirm"))
		names = {r.check_name for r in check.results}
		self.assertEqual(names, {c.name for c in verification.SUITE} | {"Response time GET /api/method/ping"})
		self.assertEqual({r.status for r in check.results}, {"Pass"}, check.as_dict()["results"])
		timing = next(r for r in check.results if r.category == "performance")
		self.assertGreater(timing.metric, 0)

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
		self.configure(site_url=f"http://127.0.0.1:{free_port()}")
		try:
			report, code = self.verify()
		finally:
			self.configure(site_url=f"http://127.0.0.1:{self.port}")
		self.assertEqual((report["sites"][0]["verdict"], code), ("Rollback immediately", 2))
		self.assertIn("nothing answers", report["sites"][0]["verdict_reason"])

	def test_stopped_workers_are_critical_and_exit_2(self):
		self.stop_workers("worker", "long worker")
		try:
			report, code = self.verify()
		finally:
			self.start_workers()
		[site] = report["sites"]
		self.assertEqual((site["verdict"], code), ("Rollback", 2))
		self.assertIn("Workers: no live worker on default, long", site["verdict_reason"])
		# Workers can be down for a moment (a restart): the failure counted once it repeated.
		self.assertEqual(site["runs"], 2)

	def test_json_for_all_sites_is_one_document(self):
		proc = bench_cmd("all", "deploy-manager", "verify", "--json")
		report = frappe.parse_json(proc.stdout)
		ours = next(s for s in report["sites"] if s["site"] == self.site)
		self.assertEqual(ours["verdict"], "Confirm", ours)
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
		# Every check still reported, each within the deadline.
		self.assertEqual(len(site["results"]), len(verification.SUITE) + 1)
		self.assertTrue(all(r["duration"] <= 30 for r in site["results"]))


class TestPostDeployFlow(HealthySiteTestCase):
	"""From a real migrate, through the real post-deploy job, to Monitoring, Confirmed or Rollback
	Recommended, with the alerts."""

	def deploy(self):
		"""A migrate, and the deployment once the workers have verified it."""
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		name = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
		wait_until(lambda: judged(name), 90, f"the post-deploy verification of {name}")
		return frappe.get_doc("Deployment", name)

	def test_migrate_to_monitoring_to_confirmed(self):
		doc = self.deploy()
		self.assertEqual((doc.status, doc.verdict), ("Monitoring", "Confirm"), doc.verdict_reason)
		self.assertGreater(doc.monitoring_until, now_datetime())
		post = frappe.get_all(
			"Verification Check", filters={"deployment": doc.name}, fields=["phase", "verdict"]
		)
		self.assertEqual(post, [{"phase": "Post-deploy", "verdict": "Confirm"}])
		# The window's first re-check is queued for its time, five minutes on: the sweep leaves it.
		self.assertAlmostEqual(
			(doc.next_check_at - now_datetime()).total_seconds(), monitoring.MAX_INTERVAL_SECONDS, delta=30
		)
		monitoring.monitor_deployments()
		self.assertEqual(frappe.db.count("Verification Check", {"deployment": doc.name}), 1)

		monitoring.recheck(doc.name, doc.next_check_at)  # the queued re-check, run now
		doc.reload()
		self.assertEqual(doc.status, "Monitoring", "confirmed before the window ended")

		# A re-check whose job was lost (a queue flushed) is run by the sweep.
		frappe.db.set_value(
			"Deployment",
			doc.name,
			{
				"monitoring_until": add_to_date(now_datetime(), minutes=-1),
				"next_check_at": add_to_date(now_datetime(), minutes=-5),
			},
		)
		monitoring.monitor_deployments()
		doc.reload()
		self.assertEqual((doc.status, doc.verdict, doc.next_check_at), ("Confirmed", "Confirm", None))
		self.assertEqual(self.emails_for(doc.name), [])

	def test_a_shortened_window_confirms_from_the_job(self):
		self.configure(monitoring_window=0)
		try:
			doc = self.deploy()
		finally:
			self.configure(monitoring_window=15)
		self.assertEqual((doc.status, doc.verdict), ("Confirmed", "Confirm"), doc.verdict_reason)

	def test_web_server_down_recommends_rollback_and_alerts_once(self):
		recipient = user_with("dm-alerts@example.com", "Deploy Manager")
		# Earlier tests' deployments still in their window would be judged by the five-minute sweep
		# while the server is down, and post alerts of their own.
		frappe.db.set_value("Deployment", {"status": "Monitoring"}, "status", "Confirmed")
		frappe.db.commit()
		stop(self.processes["web"])
		try:
			with webhook_receiver() as (url, received):
				self.set_webhook(url)
				doc = self.deploy()
				wait_until(lambda: received, 30, "the webhook post")
		finally:
			self.processes["web"] = serve(self.site, self.port)
			self.set_webhook("")
		self.assertEqual((doc.status, doc.verdict), ("Rollback Recommended", "Rollback immediately"))
		self.assertIn("Health endpoint: nothing answers", doc.verdict_reason)
		self.assertIn(recipient, self.emails_for(doc.name))
		[post] = received
		self.assertIn(doc.name, post["text"])
		self.assertIn("Rollback immediately", post["text"])
		self.assertEqual(doc.notified_verdict, "Rollback immediately")

		notifications.rollback_recommended(doc)
		self.assertEqual(self.emails_for(doc.name).count(recipient), 1, "alerted twice for one verdict")

	def test_stopped_workers_after_deploy_recommend_rollback(self):
		recipient = user_with("dm-alerts@example.com", "Deploy Manager")
		self.stop_workers("worker", "long worker")
		try:
			doc = self.deploy()
		finally:
			self.start_workers()
		self.assertEqual((doc.status, doc.verdict), ("Rollback Recommended", "Rollback"))
		self.assertIn("Workers: no live worker on default, long", doc.verdict_reason)
		# Judged twice: once inconclusive, then confirmed by the re-check; alerted once.
		checks = frappe.get_all(
			"Verification Check",
			filters={"deployment": doc.name},
			fields=["phase", "verdict"],
			order_by="creation",
		)
		self.assertEqual(
			checks,
			[
				{"phase": "Post-deploy", "verdict": "Inconclusive"},
				{"phase": "Monitoring", "verdict": "Rollback"},
			],
		)
		self.assertEqual(self.emails_for(doc.name).count(recipient), 1)

	def test_new_errors_in_the_window_recommend_rollback(self):
		doc = self.deploy()
		self.assertEqual(doc.status, "Monitoring")
		title = f"dm_test.checkout_{doc.name}"
		frappe.log_error(title=title, message="Traceback: KeyError: 'price'")
		frappe.db.commit()
		monitoring.recheck(doc.name, doc.next_check_at)
		doc.reload()
		self.assertEqual((doc.status, doc.verdict), ("Rollback Recommended", "Rollback"))
		self.assertIn(f"Error logs: 1 new kind(s) of error since the deploy: {title}", doc.verdict_reason)

	def test_the_post_deploy_job_waits_for_the_site_to_reopen_then_verifies_it(self):
		# As `bench update` runs it: the site closed before the migrate, opened after the build.
		bench_cmd(self.site, "set-config", "maintenance_mode", "1", check=True)
		try:
			bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
			name = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
			job = monitoring.post_deploy_job_id(name)
			# The first job found the site closed and queued the next hop of its wait.
			wait_until(lambda: is_job_enqueued(f"{job}:2"), 60, "the post-deploy job's second wait")
			doc = frappe.get_doc("Deployment", name)
			self.assertEqual(doc.status, "Awaiting Verification")
			self.assertIn(
				"the site is closed or its scheduler paused: verified as soon as both clear", doc.log
			)
		finally:
			bench_cmd(self.site, "set-config", "maintenance_mode", "0", check=True)
		# No sweep: the waiting job itself verifies once the site is open.
		wait_until(lambda: judged(name), monitoring.HOP_SECONDS + 60, "the verification after reopening")
		doc = frappe.get_doc("Deployment", name)
		self.assertEqual((doc.status, doc.verdict), ("Monitoring", "Confirm"), doc.verdict_reason)
		self.assertIn("the site is open: verifying after", doc.log)

	def test_response_times_are_compared_with_the_pre_deploy_baseline(self):
		pre = frappe.parse_json(
			bench_cmd(self.site, "deploy-manager", "verify", "--phase", "pre", "--json").stdout
		)
		pre_check = frappe.get_doc("Verification Check", pre["sites"][0]["name"])
		ping = "Response time GET /api/method/ping"
		baseline = next(r.metric for r in pre_check.results if r.check_name == ping)
		doc = self.deploy()
		post = frappe.get_last_doc(
			"Verification Check", filters={"deployment": doc.name, "phase": "Post-deploy"}
		)
		timing = next(r for r in post.results if r.check_name == ping)
		self.assertEqual(timing.baseline, f"p50 {baseline:.0f} ms")
		self.assertIn("against the baseline", timing.message)

	def test_an_inconclusive_scheduled_verification_is_checked_again_once(self):
		self.stop_workers("worker", "long worker")
		try:
			monitoring.verify_on_schedule()
			first = frappe.get_last_doc("Verification Check", filters={"phase": "Scheduled"})
			self.assertEqual(first.verdict, "Inconclusive", first.verdict_reason)
			self.assertIn("Workers: no live worker on default, long", first.verdict_reason)
		finally:
			self.start_workers()
		# The re-check, queued for its time on the short queue, finds the workers back.
		wait_until(
			lambda: frappe.get_all(
				"Verification Check",
				filters={"phase": "Scheduled", "creation": (">", first.creation)},
				pluck="verdict",
			),
			RECHECK_AFTER + monitoring.HOP_SECONDS + 60,
			"the scheduled re-check",
		)
		again = frappe.get_last_doc("Verification Check", filters={"phase": "Scheduled"})
		self.assertEqual(again.verdict, "Confirm", again.verdict_reason)

	def test_scheduled_verification_is_stored_without_a_deployment(self):
		monitoring.verify_on_schedule()
		last = frappe.get_last_doc("Verification Check", filters={"phase": "Scheduled"})
		self.assertFalse(last.deployment)
		self.assertEqual(last.verdict, "Confirm", last.verdict_reason)


class TestVerifyNow(HealthySiteTestCase):
	"""The whitelisted "Verify now": who may call it, and what it does."""

	def tearDown(self):
		frappe.set_user("Administrator")

	def test_guest_and_a_plain_user_may_not_verify(self):
		plain = user_with("dm-plain@example.com")
		for user in ("Guest", plain):
			frappe.set_user(user)
			with self.assertRaises(frappe.PermissionError, msg=user):
				verify_now()

	def test_over_http_guest_and_a_plain_api_user_are_refused_and_a_deploy_manager_is_not(self):
		url = f"http://127.0.0.1:{self.port}/api/method/deploy_manager.api.verify_now"
		headers = {"Host": self.site}
		self.assertEqual(requests.post(url, headers=headers, timeout=10).status_code, 403)
		for user, expected in (("dm-plain@example.com", 403), ("dm-manager@example.com", 200)):
			roles = ("Deploy Manager",) if "manager" in user else ()
			token = self.api_token(user_with(user, *roles))
			answer = requests.post(url, headers={**headers, "Authorization": f"token {token}"}, timeout=10)
			self.assertEqual(answer.status_code, expected, (user, answer.text))
		# A GET is refused: verifying is an action, not a read.
		self.assertNotEqual(
			requests.get(url, headers={**headers, "Authorization": f"token {token}"}, timeout=10).status_code,
			200,
		)

	def api_token(self, user: str) -> str:
		return ":".join(api_key_of(user))

	def test_a_deploy_manager_queues_a_verification_of_a_deployment(self):
		deployment = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
		before = frappe.db.count("Verification Check", {"deployment": deployment, "phase": "Manual"})
		frappe.set_user(user_with("dm-manager@example.com", "Deploy Manager"))
		answer = verify_now(deployment)
		frappe.set_user("Administrator")
		self.assertTrue(answer["queued"], answer)
		wait_until(
			lambda: (
				frappe.db.count("Verification Check", {"deployment": deployment, "phase": "Manual"}) > before
			),
			60,
			"the manual verification",
		)

	def test_an_unknown_deployment_is_refused(self):
		frappe.set_user(user_with("dm-manager@example.com", "Deploy Manager"))
		with self.assertRaises(frappe.DoesNotExistError):
			verify_now("DEP-1999-99999")
		fresh_snapshot()
