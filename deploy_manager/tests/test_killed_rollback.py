"""A rollback killed while its `bench restore` runs (the OOM killer, a closed terminal): the restore
lives on in its own session and keeps writing, so the next commands leave the site closed and say
which processes still run; once the restore has ended, the next command reports the interruption,
puts back the records the rollback kept aside, and only then reopens the site; the watchdog (what
cron runs) sees the same, and settles it."""

import json
import os
import signal
import subprocess
import sys
import time

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_bench_path

from deploy_manager.core import proctable
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services.closing import FLAGS
from deploy_manager.tests.fixtures import ProbeApp, bench_cmd, spawn, stop_supervised

# Rows that make the restore take long enough to be caught in the middle: seconds, not minutes.
BALLAST_ROWS = 1_000_000


class TestKilledRollback(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.probe = ProbeApp.installed_for(cls)
		saved = frappe.db.get_single_value(SETTINGS, "pre_deploy_backup")
		cls.addClassCleanup(frappe.db.set_single_value, SETTINGS, "pre_deploy_backup", saved)
		frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "Always")
		# In the pre-deploy backup, so in what the rollback restores; MariaDB's sequence engine fills it.
		frappe.db.sql_ddl("create table if not exists dm_ballast (id int primary key, filler varchar(100))")
		frappe.db.sql(
			f"insert ignore into dm_ballast select seq, repeat('x', 100) from seq_1_to_{BALLAST_ROWS}"
		)
		frappe.db.commit()
		cls.addClassCleanup(frappe.db.sql_ddl, "drop table if exists dm_ballast")

	def site_flags(self) -> dict:
		config = frappe.get_file_json(frappe.get_site_path("site_config.json"))
		return {flag: config.get(flag) for flag in FLAGS}

	def settle(self, patch: str):
		self.probe.ensure_installed(self.site)  # back on its branch, where the next commit goes
		self.probe.remove_patch(patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)

	def test_the_site_stays_closed_while_the_restore_lives_and_is_settled_after(self):
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		marker = f"killed-rollback-{frappe.generate_hash(length=8)}"
		patch = self.probe.add_patch(
			f'frappe.get_doc({{"doctype": "ToDo", "description": "{marker}"}}).insert()\n'
		)
		self.addCleanup(self.settle, patch)
		self.addCleanup(stop_supervised)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		undone = frappe.get_last_doc("Deployment", filters={"source": "Bench Migrate"}).name
		flags = self.site_flags()

		rollback = spawn(
			self.site, "deploy-manager", "rollback", f"before-{undone}", "--yes", "--accept-other-sites"
		)
		restore = self.wait_for_restore(rollback)
		os.kill(rollback.pid, signal.SIGKILL)
		rollback.communicate(timeout=30)
		# Whatever fails below, the next test finds the restore ended and the site settled.
		self.addCleanup(self.cli, "deploy-manager", "status")
		self.addCleanup(self.wait_until_gone, restore)

		for command in ("preflight", "status"):
			refused = self.cli("deploy-manager", command)
			self.assertEqual(refused.returncode, 1, refused.stdout + refused.stderr)
			self.assertIn("has ended while processes it started still run: pid", refused.stderr)
			self.assertIn(str(restore), refused.stderr)
			self.assertEqual(self.site_flags()["maintenance_mode"], 1)
		another = self.cli("deploy-manager", "rollback", f"before-{undone}", "--yes", "--accept-other-sites")
		self.assertEqual(another.returncode, 1, another.stdout)
		self.assertIn(str(restore), another.stderr)
		watched = self.cli("deploy-manager", "watchdog", "run", "--json", site=False)
		[finding] = json.loads(watched.stdout)[self.site]["findings"]
		self.assertEqual(finding["status"], "noticed")
		self.assertIn(f"processes it started still run: pid {restore}", finding["finding"])
		self.assertTrue(
			proctable.read(restore), "the restore ended before the commands were tried: more ballast"
		)

		self.wait_until_gone(restore)
		# What cron runs settles it, as the next command would have.
		settled = self.cli("deploy-manager", "watchdog", "run", "--json", site=False)
		[finding] = json.loads(settled.stdout)[self.site]["findings"]
		self.assertEqual(finding["status"], "repaired", settled.stdout + settled.stderr)
		self.assertIn("the records it kept aside during its restore are put back", finding["finding"])
		self.assertIn("during restore without finishing", finding["finding"])
		self.assertEqual(self.site_flags(), flags)
		status = self.cli("deploy-manager", "status")
		self.assertEqual(status.returncode, 0, status.stdout + status.stderr)
		self.assertNotIn("interrupted", status.stderr)
		frappe.db.connect()  # the restore replaced the database under this connection
		interrupted = frappe.get_last_doc("Deployment", filters={"source": "Rollback"})
		self.assertEqual(interrupted.rollback_of, undone)
		self.assertEqual(interrupted.status, "Failed")
		self.assertIn("restore interrupted", interrupted.failure_reason)
		self.assertTrue(frappe.db.exists("Deployment", undone))
		self.assertFalse(frappe.db.exists("ToDo", {"description": marker}))  # the restore itself finished
		kept = os.listdir(frappe.get_site_path("private", "deploy_manager", "backups"))
		self.assertEqual([name for name in kept if name.startswith("history-")], [])

	def cli(self, *args: str, site: bool = True) -> subprocess.CompletedProcess:
		"""`bench --site SITE ...` (or a bench-wide command) touching nothing here: this process's
		Frappe must not read a database that is being restored (spawn and bench_cmd commit and clear
		caches)."""
		on = ("--site", self.site) if site else ()
		return subprocess.run(
			[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", *on, *args],
			cwd=f"{get_bench_path()}/sites",
			capture_output=True,
			text=True,
			timeout=300,
		)

	def wait_for_restore(self, rollback) -> int:
		"""The pid of the rollback's `bench restore` child, once it runs."""
		deadline = time.monotonic() + 300
		while time.monotonic() < deadline:
			for pid in proctable.family(rollback.pid) - {rollback.pid}:
				try:
					with open(f"/proc/{pid}/cmdline") as f:
						if "restore" in f.read().split("\0"):
							time.sleep(1)  # into its DROP DATABASE and import
							return pid
				except OSError:
					continue
			if rollback.poll() is not None:
				self.fail(f"the rollback ended before its restore: {rollback.communicate()}")
			time.sleep(0.2)
		self.fail("the rollback's restore did not start within 300 s")

	def wait_until_gone(self, pid: int):
		deadline = time.monotonic() + 600
		while proctable.read(pid) and not proctable.read(pid).zombie:
			if time.monotonic() > deadline:
				self.fail(f"the restore (pid {pid}) did not end within 600 s")
			time.sleep(0.5)
