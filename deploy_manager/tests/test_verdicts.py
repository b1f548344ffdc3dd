"""Verdicts an operator can trust, on the test site run as production runs it (its own web server,
a worker per queue, the scheduler ticking): a healthy `bench update` and a rollback to an old backup
end Monitoring, then Confirmed, with no alert; a scheduler that really stopped still ends Rollback
Recommended, after the re-check that confirms it, with one alert.

The scheduler's round is 10 s here (Frappe's `scheduler_tick_interval`, 60 s by default), so that a
stopped scheduler shows in half a minute rather than two.
"""

import os
import time

import frappe
from frappe.utils import add_to_date, now_datetime
from frappe.utils.background_jobs import get_queues

from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.tests.fixtures import (
	DeployTestCase,
	bench_cmd,
	judged,
	spawn,
	stop,
	user_with,
	wait_until,
	webhook_receiver,
)

TICK = 10
# Set for every site in the bench's config by these tests: a site's own value would win.
BENCH_WIDE = ("maintenance_mode", "pause_scheduler", "scheduler_tick_interval", "scheduler_interval")
ONLINE_JOBS = (
	"frappe.utils.change_log.check_for_update",
	"frappe.desk.doctype.changelog_feed.changelog_feed.fetch_changelog_feed",
)


def common_config() -> str:
	return os.path.join(frappe.get_site_path(".."), "common_site_config.json")


def write_json(path: str, values: dict):
	with open(path, "w") as f:
		f.write(frappe.as_json(values))


def set_bench_config(**values):
	"""As `bench update` sets its flags: in the bench's config, for every site, in one write."""
	config = {**frappe.get_file_json(common_config()), **values}
	write_json(common_config(), {k: v for k, v in config.items() if v is not None})


class TestVerdictsAfterReopening(DeployTestCase):
	@classmethod
	def setUpClass(cls):
		# Before the scheduler starts, which reads its round once.
		original = frappe.get_file_json(common_config())
		set_bench_config(scheduler_tick_interval=TICK)
		cls.addClassCleanup(set_bench_config, scheduler_tick_interval=original.get("scheduler_tick_interval"))
		super().setUpClass()
		# Re-checks every 20 s and the window's end after a minute.
		cls.configure(monitoring_window=1)
		# This machine has no way out to the internet: Frappe's update check and changelog feed would
		# fail each time they ran, and rightly count as new failures once the old schedule times below
		# make them due.
		online = {"method": ("in", ONLINE_JOBS)}
		frappe.db.set_value("Scheduled Job Type", online, "stopped", 1)
		frappe.db.commit()
		cls.addClassCleanup(frappe.db.commit)
		cls.addClassCleanup(frappe.db.set_value, "Scheduled Job Type", online, "stopped", 0)
		cls.recipient = user_with("dm-alerts@example.com", "Deploy Manager")

	def setUp(self):
		super().setUp()
		self.addCleanup(self.set_webhook, "")
		# As on a fresh site, no flag of the site's own (earlier tests leave `maintenance_mode: 0`),
		# which would hide the bench's: the flags `bench update` sets are the site's. Nor a scheduler
		# timing of its own, which would hide the bench's TICK.
		path = frappe.get_site_path("site_config.json")
		config = frappe.get_file_json(path)
		self.addCleanup(write_json, path, config)
		write_json(path, {k: v for k, v in config.items() if k not in BENCH_WIDE})
		# Deployments of earlier tests still in their window: their re-checks would run meanwhile.
		frappe.db.set_value("Deployment", {"status": "Monitoring"}, "status", "Confirmed")
		frappe.db.commit()

	def latest(self) -> str:
		return frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]

	def make_jobs_overdue(self, **ago):
		"""Every scheduled job last ran long ago: as after a long maintenance, or in an old backup."""
		before = add_to_date(now_datetime(), **{unit: -amount for unit, amount in ago.items()})
		frappe.db.sql("update `tabScheduled Job Type` set last_execution = %s", before)
		frappe.db.commit()

	def wait_for_status(self, deployment: str, status: str, timeout: float):
		wait_until(
			lambda: frappe.db.get_value("Deployment", deployment, "status") == status,
			timeout,
			f"{deployment} to be {status}",
		)

	def checks_of(self, deployment: str) -> list[tuple[str, str]]:
		return [
			(c.phase, c.verdict)
			for c in frappe.get_all(
				"Verification Check",
				filters={"deployment": deployment},
				fields=["phase", "verdict"],
				order_by="creation",
			)
		]

	def test_a_bench_update_ends_monitoring_then_confirmed_with_no_alert(self):
		with webhook_receiver() as (url, received):
			self.set_webhook(url)
			# bench update's steps: closed and paused, migrated, built, opened.
			set_bench_config(maintenance_mode=1, pause_scheduler=1)
			try:
				self.make_jobs_overdue(hours=2)
				bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
				bench_cmd(None, "build", "--app", "frappe", check=True)
			finally:
				set_bench_config(maintenance_mode=0, pause_scheduler=0)
			reopened = time.monotonic()
			name = self.latest()
			wait_until(lambda: judged(name), 90, f"the verdict on {name}")
			took = time.monotonic() - reopened
			doc = frappe.get_doc("Deployment", name)
			self.assertEqual((doc.status, doc.verdict), ("Monitoring", "Confirm"), doc.verdict_reason)
			self.wait_for_status(name, "Confirmed", 120)
		print(f"\n{name}: verdict stored {took:.1f} s after the site reopened")
		checks = self.checks_of(name)
		self.assertEqual(checks[0][0], "Post-deploy")
		self.assertIn(("Monitoring", "Confirm"), checks)
		# Just after the build a worker or a response time may fail once: re-checked, not counted.
		self.assertLessEqual({verdict for _, verdict in checks}, {"Confirm", "Inconclusive"}, checks)
		self.assertEqual(received, [])

	def test_rollback_to_an_old_backup_ends_monitoring_not_rollback_recommended(self):
		# Last of the class (by name): the rollback restarts supervisor's workers, which the cleanup
		# stops again, failing the job one of them runs, within the rollback's own window.
		with webhook_receiver() as (url, received):
			# Before the backup: the restore brings back Settings as they were in it.
			self.set_webhook(url)
			self.configure(pre_deploy_backup="Always")
			self.addCleanup(self.configure, pre_deploy_backup="In Production")
			# The pre-deploy backup holds schedule times older than the longest interval (monthly).
			bench_cmd(self.site, "set-config", "pause_scheduler", "1", check=True)
			try:
				self.make_jobs_overdue(days=40)
				self.probe.add_patch("frappe.db.set_value('System Settings', None, 'dormant_days', 4)\n")
				bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
			finally:
				bench_cmd(self.site, "set-config", "pause_scheduler", "0", check=True)
			deployment = self.latest()
			wait_until(lambda: judged(deployment), 90, f"the verdict on {deployment}")

			done = bench_cmd(
				self.site,
				"deploy-manager",
				"rollback",
				f"before-{deployment}",
				"--yes",
				"--accept-other-sites",
			)
			self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
			rollback = frappe.db.get_value("Deployment", deployment, "rolled_back_by")
			wait_until(lambda: judged(rollback), 90, f"the verdict on {rollback}")
			doc = frappe.get_doc("Deployment", rollback)
			# (Fix forward is fair: the rollback's restart of the workers may fail a job in flight.)
			self.assertEqual(doc.status, "Monitoring", doc.verdict_reason)
			self.assertIn(doc.verdict, ("Confirm", "Fix forward"), doc.verdict_reason)
			self.assertNotIn("Scheduler", doc.verdict_reason)
			self.wait_for_status(rollback, "Confirmed", 120)
		self.assertNotIn("Rollback", {verdict for _, verdict in self.checks_of(rollback)})
		self.assertEqual(received, [])

	def test_a_stopped_scheduler_still_recommends_rollback_after_the_recheck_with_one_alert(self):
		stop(self.processes["scheduler"])
		self.addCleanup(self.start_scheduler)
		# What it queued before it stopped has run (its jobs go to the default and long queues).
		wait_until(
			lambda: not any(q.count for q in get_queues() if q.name.endswith((":default", ":long"))),
			60,
			"the scheduler's jobs to run",
		)
		self.make_jobs_overdue(hours=2)
		with webhook_receiver() as (url, received):
			self.set_webhook(url)
			bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
			name = self.latest()
			self.wait_for_status(name, "Rollback Recommended", 120)
			time.sleep(2)  # an alert sent twice would be posted by now
		doc = frappe.get_doc("Deployment", name)
		self.assertEqual(doc.verdict, "Rollback")
		self.assertIn("Scheduler: not ticking: nothing enqueued or run since", doc.verdict_reason)
		checks = self.checks_of(name)
		# Counted only when it repeated: the run before the verdict was inconclusive.
		self.assertEqual(checks[-2:], [("Monitoring", "Inconclusive"), ("Monitoring", "Rollback")], checks)
		self.assertEqual(len(received), 1, received)
		self.assertIn("Rollback", received[0]["text"])
		self.assertEqual(self.emails_for(name).count(self.recipient), 1)

	@classmethod
	def start_scheduler(cls):
		cls.processes["scheduler"] = spawn(cls.site, "schedule")
