"""The watchdog with the bench user's real crontab (Debian's cron): one tagged entry for this bench,
written once however often it is enabled, removed alone; and its run, which notes maintenance mode
or a paused scheduler that nothing holds. (A killed rollback found and settled by the watchdog:
test_killed_rollback.)"""

import json
import os
import pwd
import subprocess

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_bench_path, get_sites

from deploy_manager import api
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services.closing import FLAGS
from deploy_manager.tests.fixtures import bench_cmd, user_with

FOREIGN = "17 3 * * * /usr/local/bin/nightly-report --all"
OTHER_BENCH = "*/5 * * * * cd /srv/other-bench/sites && true # deploy_manager watchdog: /srv/other-bench"


def as_user(user: str) -> list[str]:
	# Only root may name another user's crontab; the tests run as the bench's user.
	return ["-u", user] if os.getuid() == 0 else []


def crontab_of(user: str) -> str:
	listed = subprocess.run(["crontab", "-l", *as_user(user)], capture_output=True, text=True)
	return listed.stdout if listed.returncode == 0 else ""


def set_crontab(user: str, text: str):
	if text:
		subprocess.run(["crontab", *as_user(user), "-"], input=text, text=True, check=True)
	else:
		subprocess.run(["crontab", "-r", *as_user(user)], capture_output=True)


class TestWatchdog(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.owner = pwd.getpwuid(os.stat(get_bench_path()).st_uid).pw_name

	def test_enable_writes_one_entry_for_this_bench_and_disable_removes_only_it(self):
		# The bench user's crontab as found goes back when the test ends (root may write it).
		self.addCleanup(set_crontab, self.owner, crontab_of(self.owner))
		set_crontab(self.owner, f"{FOREIGN}\n{OTHER_BENCH}\n")
		for every in ("5", "3"):
			enabled = bench_cmd(None, "deploy-manager", "watchdog", "enable", "--every", every)
			self.assertEqual(enabled.returncode, 0, enabled.stdout + enabled.stderr)
		tab = crontab_of(self.owner)
		ours = [
			line
			for line in tab.splitlines()
			if line.endswith(f"# deploy_manager watchdog: {get_bench_path()}")
		]
		self.assertEqual(len(ours), 1, tab)
		self.assertTrue(ours[0].startswith("*/3 * * * * cd "), ours[0])
		self.assertIn("deploy-manager watchdog run >> ", ours[0])
		self.assertIn(FOREIGN, tab)
		self.assertIn(OTHER_BENCH, tab)

		shown = bench_cmd(None, "deploy-manager", "watchdog", "status", "--json", check=True)
		self.assertEqual(json.loads(shown.stdout)["entries"], [ours[0]])

		disabled = bench_cmd(None, "deploy-manager", "watchdog", "disable", check=True)
		self.assertIn("entry removed", disabled.stdout)
		self.assertEqual(crontab_of(self.owner), f"{FOREIGN}\n{OTHER_BENCH}\n")

	def test_what_cron_runs_works_from_the_entry_itself(self):
		"""The command line in the entry, run as cron runs it: /bin/sh, as the bench's user (this test's)."""
		self.addCleanup(set_crontab, self.owner, crontab_of(self.owner))
		bench_cmd(None, "deploy-manager", "watchdog", "enable", check=True)
		entry = next(
			line for line in crontab_of(self.owner).splitlines() if "deploy_manager watchdog:" in line
		)
		command = entry.split(" ", 5)[5].rsplit(" # ", 1)[0]
		ran = subprocess.run(["/bin/sh", "-c", command], timeout=300, env={"PATH": "/usr/bin:/bin"})
		self.assertIn(ran.returncode, (0, 1))
		last = json.loads(
			bench_cmd(None, "deploy-manager", "watchdog", "status", "--json", check=True).stdout
		)
		self.assertTrue(last["sites"][self.site]["ran_at"])

	def test_a_run_watches_every_site_with_the_app(self):
		ran = bench_cmd(None, "deploy-manager", "watchdog", "run", "--json")
		with_app = [
			site
			for site in get_sites()
			if "deploy_manager" in bench_cmd(site, "list-apps", check=True).stdout
		]
		self.assertGreater(len(with_app), 1, "the test bench has the demo site too")
		self.assertEqual(sorted(json.loads(ran.stdout)), sorted(with_app), ran.stderr)

	def test_a_run_that_finds_what_the_run_before_found_is_not_stored_again(self):
		runs = [self.watched_site() for _ in range(3)]
		# The first two may differ (a transient check is noticed on its second failure); the third
		# finds what the second found, an hour has not passed: no new Verification Check.
		self.assertEqual(runs[1]["findings"], runs[2]["findings"])
		self.assertEqual((runs[2]["check"], runs[2]["stored_at"]), (runs[1]["check"], runs[1]["stored_at"]))
		self.assertEqual(frappe.db.get_value("Verification Check", runs[2]["check"], "phase"), "Watchdog")

	def test_maintenance_and_a_paused_scheduler_that_nothing_holds_are_reported_once_they_last(self):
		config = frappe.get_file_json(frappe.get_site_path("site_config.json"))
		for flag in FLAGS:
			self.addCleanup(
				bench_cmd, self.site, "set-config", flag, json.dumps(config.get(flag) or 0), "--parse"
			)
			bench_cmd(self.site, "set-config", flag, "1", "--parse", check=True)
		saved = frappe.db.get_single_value(SETTINGS, "watchdog_closed_after")
		self.addCleanup(frappe.db.set_single_value, SETTINGS, "watchdog_closed_after", saved)

		# Someone's work for all the watchdog knows: seen, not yet reported.
		self.assertEqual(self.watched(closed_after=15)["status"], "waiting")
		finding = self.watched(closed_after=0)
		self.assertEqual(finding["status"], "noticed")
		self.assertIn(
			"maintenance_mode and pause_scheduler on for 0 min, held by no deploy", finding["finding"]
		)
		self.assertEqual(
			frappe.get_file_json(frappe.get_site_path("site_config.json"))["maintenance_mode"], 1
		)

	def test_desk_shows_the_last_run_to_deploy_managers_only(self):
		bench_cmd(None, "deploy-manager", "watchdog", "run")
		self.addCleanup(frappe.set_user, "Administrator")
		# The workspace's block, written by the migrate, for the roles that may read what it shows.
		block = frappe.get_doc("Custom HTML Block", "Deploy Manager Watchdog")
		self.assertEqual(sorted(row.role for row in block.roles), ["Deploy Manager", "System Manager"])
		self.assertIn("deploy_manager.api.watchdog_status", block.script)

		frappe.set_user(user_with("dm-watch-manager@example.com", "Deploy Manager"))
		shown = api.watchdog_status()
		self.assertTrue(shown["last_run"]["ran_at"])
		self.assertTrue(shown["last_run"]["findings"])
		for user in ("Guest", user_with("dm-plain@example.com")):
			frappe.set_user(user)
			with self.assertRaises(frappe.PermissionError):
				api.watchdog_status()

	def watched_site(self) -> dict:
		ran = bench_cmd(None, "deploy-manager", "watchdog", "run", "--json")
		return json.loads(ran.stdout)[self.site]

	def watched(self, closed_after: int) -> dict:
		"""This site's one finding in a watchdog run with Settings' Closed Too Long at `closed_after`."""
		frappe.db.set_single_value(SETTINGS, "watchdog_closed_after", closed_after)
		frappe.db.commit()
		[finding] = self.watched_site()["findings"]
		return finding
