"""The watchdog on a site run as production runs it (web server, workers, scheduler): it judges the
site with its own suite (a Verification Check of phase Watchdog) and alerts from its own process,
once per problem and once when it clears: workers stopped, the scheduler stopped, maintenance mode
and a paused scheduler left on as a failed `bench update` leaves them; and it sweeps what the
scheduler's sweep has left waiting."""

import json

import frappe
from frappe.utils import add_to_date, now_datetime
from frappe.utils.background_jobs import get_queues

from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services import verification
from deploy_manager.tests.fixtures import (
	HealthySiteTestCase,
	bench_cmd,
	spawn,
	stop,
	user_with,
	wait_until,
	webhook_receiver,
)

WORKERS = ("short worker", "worker", "long worker")


class TestWatchdogAlerts(HealthySiteTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		receiver = webhook_receiver()
		cls.webhook, cls.received = receiver.__enter__()
		cls.addClassCleanup(receiver.__exit__, None, None, None)
		cls.set_webhook(cls.webhook)
		cls.addClassCleanup(cls.set_webhook, "")
		saved = frappe.db.get_single_value(SETTINGS, "watchdog_closed_after")
		cls.addClassCleanup(cls.configure, watchdog_closed_after=saved)
		cls.configure(watchdog_closed_after=0)
		cls.recipient = user_with("dm-watchdog-alerts@example.com", "Deploy Manager")

	def setUp(self):
		self.started = now_datetime()
		# A deployment of its own: what earlier tests left in the Error Log is from before it.
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		self.wait_until_healthy()
		self.watch()
		self.received.clear()

	def watch(self) -> dict:
		ran = bench_cmd(None, "deploy-manager", "watchdog", "run", "--json")
		return json.loads(ran.stdout)[self.site]

	def passes(self, check: str) -> bool:
		return all(r.status == "pass" for r in verification.run_suite().results if r.name == check)

	def assert_alerted_once_and_cleared_once(self, problem: str, put_back, check: str, runs_to_notice=1):
		"""The watchdog's runs notice `problem` (a transient check after as many runs as Settings say),
		alert once however often they see it, and once more when `put_back` has cleared it (`check`
		passes again); what else comes and goes meanwhile is not this test's."""
		for _ in range(runs_to_notice + 1):
			found = self.watch()
		self.assertIn(problem, json.dumps(found))
		self.assertIn("noticed", [f["status"] for f in found["findings"]])
		if found.get("check"):
			self.assertEqual(frappe.db.get_value("Verification Check", found["check"], "phase"), "Watchdog")

		put_back()
		wait_until(lambda: self.passes(check), 180, f"{check} to pass again")
		self.watch()
		self.watch()
		alerts = [message["text"] for message in self.received]
		self.assertEqual(len([a for a in alerts if "New: " + problem in a]), 1, alerts)
		self.assertEqual(len([a for a in alerts if "Cleared: " + problem in a]), 1, alerts)

	def test_workers_stopped(self):
		self.stop_workers(*WORKERS)
		self.assert_alerted_once_and_cleared_once(
			"Workers: ", self.start_workers, "Workers", runs_to_notice=2
		)
		# Emailed through the site too, from the watchdog's process: no worker was there to send it.
		queued = frappe.get_all(
			"Email Queue",
			filters={
				"reference_doctype": "Verification Check",
				"creation": (">=", self.started),
				"message": ("like", "%Workers: %"),
			},
			pluck="name",
		)
		to = frappe.get_all("Email Queue Recipient", filters={"parent": ("in", queued)}, pluck="recipient")
		self.assertEqual(to.count(self.recipient), 2, to)  # the alert and its clearing

	def test_a_deployment_the_sweep_left_waiting_is_swept_by_the_watchdog(self):
		# No worker takes its post-deploy job, and no scheduler sweeps: it waits, Awaiting Verification.
		self.stop_workers(*WORKERS)
		stop(self.processes["scheduler"])
		self.addCleanup(self.start_scheduler)
		self.addCleanup(self.start_workers)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		name = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
		self.assertEqual(frappe.db.get_value("Deployment", name, "status"), "Awaiting Verification")
		# As it stands a quarter of an hour later.
		frappe.db.set_value(
			"Deployment", name, "modified", add_to_date(now_datetime(), minutes=-15), update_modified=False
		)
		frappe.db.commit()
		found = self.watch()
		[swept] = [f for f in found["findings"] if f["key"] == "unswept"]
		self.assertEqual(swept["status"], "repaired")
		self.assertIn(f"{name} waited 10 min or more", swept["finding"])
		frappe.db.rollback()
		self.assertNotEqual(frappe.db.get_value("Deployment", name, "status"), "Awaiting Verification")
		self.assertTrue(frappe.db.exists("Verification Check", {"deployment": name, "phase": "Post-deploy"}))

	def test_the_scheduler_stopped(self):
		stop(self.processes["scheduler"])
		self.addCleanup(self.start_scheduler)
		wait_until(
			lambda: not any(q.count for q in get_queues() if q.name.endswith((":default", ":long"))),
			60,
			"the jobs it queued to run",
		)
		# What two hours of a dead scheduler leave: every job's last run two hours ago.
		frappe.db.sql(
			"update `tabScheduled Job Type` set last_execution = %s", add_to_date(now_datetime(), hours=-2)
		)
		frappe.db.commit()
		# Two rounds of the scheduler after the site reopened (its migrate), the jobs are late.
		wait_until(lambda: not self.passes("Scheduler"), 300, "the Scheduler check to fail")
		self.assert_alerted_once_and_cleared_once(
			"Scheduler: not ticking", self.start_scheduler, "Scheduler", runs_to_notice=2
		)

	def test_maintenance_and_a_paused_scheduler_left_on(self):
		config = frappe.get_file_json(frappe.get_site_path("site_config.json"))

		def put_back():
			for flag in ("maintenance_mode", "pause_scheduler"):
				bench_cmd(self.site, "set-config", flag, json.dumps(config.get(flag) or 0), "--parse")

		self.addCleanup(put_back)
		for flag in ("maintenance_mode", "pause_scheduler"):
			bench_cmd(self.site, "set-config", flag, "1", "--parse", check=True)
		self.assert_alerted_once_and_cleared_once(
			"maintenance_mode and pause_scheduler on", put_back, "Scheduler"
		)

	@classmethod
	def start_scheduler(cls):
		if cls.processes["scheduler"].poll() is not None:
			cls.processes["scheduler"] = spawn(cls.site, "schedule")
