"""A deploy killed outright (kill -9: the OOM killer, a reboot of its terminal) at five different
steps: the next watchdog run, as cron runs it, ends what the deploy left running, reopens the site
exactly as it was, and fails the Deployment saying at which step and what it ended."""

import json
import os
import signal
import time

import frappe

from deploy_manager.core import proctable
from deploy_manager.core.gitrepo import git
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services.closing import read_closed_note
from deploy_manager.tests.fixtures import DeployTestCase, bench_cmd, spawn, stop

# Enough files that checking them out takes long enough to be caught in the middle.
CHECKOUT_FILES = 3000
# Long enough for the migrate to be caught running.
SLOW_PATCH = "import time\ntime.sleep(20)\n"
STEPS = ("backup", "check out dm_probe", "migrate", "build dm_probe", "clear cache")


class TestKilledDeploy(DeployTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		saved = frappe.db.get_single_value(SETTINGS, "watchdog_orphan_grace")
		cls.addClassCleanup(cls.configure, watchdog_orphan_grace=saved)
		# What a deploy leaves running is ended at the first run after it died, not 10 minutes later.
		cls.configure(watchdog_orphan_grace=0)

	def test_a_deploy_killed_at_any_step_is_settled_by_the_next_watchdog_run(self):
		for step in STEPS:
			with self.subTest(step=step):
				self.kill_and_watch(step)

	def kill_and_watch(self, step: str):
		start = self.probe.head
		files = {"dm_probe/public/js/dm_probe.bundle.js": f"console.log({time.time_ns()});\n"}
		if step == "check out dm_probe":
			files |= {
				f"dm_probe/ballast/f{i}.txt": f"{i} {time.time_ns()}\n" * 20 for i in range(CHECKOUT_FILES)
			}
		self.probe.commit(f"Before a deploy killed at {step}", files)
		patch = self.probe.add_patch(SLOW_PATCH)
		target = self.probe.head
		git(self.probe.path, "checkout", "--quiet", "--detach", start)
		flags, deploy = self.flags(), None
		try:
			deploy = spawn(self.site, "deploy-manager", "deploy", "--app", f"dm_probe@{target}", "--yes")
			self.killed_and_watched(deploy, step, flags)
		finally:
			if deploy:
				stop(deploy)
			self.settle(patch)

	def killed_and_watched(self, deploy, step: str, flags: dict):
		note = self.wait_for_step(deploy, step)
		killed_at = time.monotonic()
		os.kill(deploy.pid, signal.SIGKILL)
		deploy.communicate(timeout=30)
		self.assertEqual(self.flags(), {"maintenance_mode": 1, "pause_scheduler": 1})

		watched = bench_cmd(None, "deploy-manager", "watchdog", "run", "--json")
		reopened_after = time.monotonic() - killed_at
		[finding] = json.loads(watched.stdout)[self.site]["findings"]
		self.assertEqual(finding["status"], "repaired", watched.stdout + watched.stderr)
		self.assertEqual(self.flags(), flags)
		self.assertIsNone(read_closed_note(self.site))
		groups = [tuple(child) for child in note["children"]] + [(note["pid"], note["started"])]
		self.assertEqual(proctable.living((0, None), groups), [], f"left running after {step}")

		doc = frappe.get_last_doc("Deployment", filters={"source": "Deploy Command"})
		self.assertEqual(doc.status, "Failed")
		self.assertTrue(doc.failure_reason.startswith(f"{step} interrupted: "), doc.failure_reason)
		self.assertIn(f"ended during {step} without finishing", doc.failure_reason)
		# The backup's dump was ended with the database password on its command line.
		self.assertNotIn(frappe.conf.db_password, doc.failure_reason + (doc.log or ""))
		touched = step in ("migrate", "build dm_probe", "clear cache")
		self.assertEqual("It had begun changing the database" in doc.failure_reason, touched)
		print(f"killed at {step}: the site reopened {reopened_after:.1f} s after the kill")

	def wait_for_step(self, deploy, step: str) -> dict:
		"""The closed-site note once the deploy is in `step` (with a child running, where the step
		starts one)."""
		deadline = time.monotonic() + 300
		while time.monotonic() < deadline:
			note = read_closed_note(self.site) or {}
			if note.get("step") == step and (
				step == "check out dm_probe" or len(proctable.family(deploy.pid)) > 1
			):
				return read_closed_note(self.site)
			if deploy.poll() is not None:
				self.fail(f"the deploy ended before {step}: {deploy.communicate()}")
			time.sleep(0.01)
		self.fail(f"the deploy did not reach {step} within 300 s")

	def settle(self, patch: str):
		"""dm_probe back on its branch without the patch, the site migrated onto it."""
		# A git ended in the middle of a checkout leaves its lock, as it would for anyone.
		(self.probe.path / ".git" / "index.lock").unlink(missing_ok=True)
		self.probe.ensure_installed(self.site)
		self.probe.remove_patch(patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
