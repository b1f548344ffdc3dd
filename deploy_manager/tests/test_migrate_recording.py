"""Real `bench migrate` runs in a child process, recorded by the hooks, read back here."""

import os
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import frappe
from filelock import FileLock
from frappe.tests.utils import FrappeTestCase
from frappe.utils import now_datetime

from deploy_manager.core.gitrepo import git
from deploy_manager.services import exit_notes, recording
from deploy_manager.tests.fixtures import NAME, ProbeApp, bench_cmd, fresh_snapshot, json_of, spawn


class TestMigrateRecording(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.probe = ProbeApp()
		cls.probe.ensure_installed(cls.site)

	@classmethod
	def tearDownClass(cls):
		cls.probe.remove(cls.site)
		super().tearDownClass()

	def migrate(self, expect_ok: bool = True):
		proc = bench_cmd(self.site, "migrate", "--skip-search-index")
		if expect_ok:
			self.assertEqual(proc.returncode, 0, f"migrate failed:\n{proc.stdout}\n{proc.stderr}")
		return proc

	@contextmanager
	def probe_patch(self, body: str):
		"""A committed probe patch running `body`; afterwards removed and the site migrated clean."""
		patch = self.probe.add_patch(body)
		try:
			yield patch
		finally:
			self.probe.remove_patch(patch)
			self.migrate()

	@contextmanager
	def probe_after_migrate(self, body: str):
		self.probe.set_after_migrate(body)
		try:
			yield
		finally:
			self.probe.set_after_migrate(None)
			self.migrate()

	def assert_failed_migrate_settles_as(self, reason: str, recorded_as: str = "In Progress"):
		"""Run a migrate that fails: its record says `recorded_as` until the hourly job settles it."""
		self.assertNotEqual(self.migrate(expect_ok=False).returncode, 0)
		failed = self.latest()
		self.assertEqual(failed.status, recorded_as)
		recording.settle_finished_migrates()
		failed.reload()
		self.assertEqual(failed.status, "Failed")
		self.assertEqual(failed.failure_reason, reason)

	def latest(self):
		name = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
		return frappe.get_doc("Deployment", name)

	def app_row(self, doc, app):
		return next(row for row in doc.apps if row.app == app)

	def test_migrate_records_each_app_moving_from_commit_to_commit(self):
		self.migrate()
		before = self.probe.head
		patch = self.probe.add_patch('frappe.db.set_default("dm_probe_note", "moved")\n')
		after = self.probe.head
		self.assertNotEqual(before, after)

		self.migrate()

		doc = self.latest()
		self.assertEqual(doc.source, "Bench Migrate")
		self.assertEqual(doc.status, "Awaiting Verification")
		self.assertEqual(doc.site, self.site)
		self.assertTrue(doc.changed)
		self.assertGreater(doc.duration, 0)
		probe = self.app_row(doc, NAME)
		self.assertEqual((probe.from_commit, probe.to_commit), (before, after))
		self.assertTrue(probe.changed)
		self.assertEqual((probe.from_branch, probe.branch), ("main", "main"))
		for app in ("frappe", "deploy_manager"):
			row = self.app_row(doc, app)
			repo = Path(frappe.get_app_path(app)).parent
			self.assertTrue((repo / ".git").exists(), f"{app} is a git checkout on the test bench")
			head = git(repo, "rev-parse", "HEAD")
			self.assertEqual((row.from_commit, row.to_commit), (head, head))
			self.assertFalse(row.changed)
		self.assertIn((patch, "Run"), [(p.patch, p.status) for p in doc.patches])
		tables = doc.touched_tables.splitlines()
		self.assertIn("tabDefaultValue", tables)
		self.assertNotIn("tabDeployment", tables)

	def test_migrate_that_changes_nothing_is_recorded_as_unchanged(self):
		self.migrate()
		hooks_file = self.probe.path / "dm_probe" / "hooks.py"
		original = hooks_file.read_text()
		hooks_file.write_text(original + "# local edit\n")
		try:
			self.migrate()
		finally:
			hooks_file.write_text(original)
		doc = self.latest()
		self.assertFalse(doc.changed)
		self.assertFalse(any(row.changed for row in doc.apps))
		self.assertTrue(self.app_row(doc, NAME).dirty)
		self.assertIn(doc.name, [d["name"] for d in self.status()])
		self.assertNotIn(doc.name, [d["name"] for d in self.status("--changed")])

	def test_app_without_git_records_version_and_empty_commit(self):
		aside = self.probe.path.with_name("dm_probe.git-aside")
		shutil.move(self.probe.path / ".git", aside)
		try:
			self.migrate()
		finally:
			shutil.move(aside, self.probe.path / ".git")
		row = self.app_row(self.latest(), NAME)
		self.assertEqual(row.to_commit, "")
		self.assertEqual(row.to_version, "0.0.1")

	def test_failing_patch_is_marked_failed_by_the_next_migrate(self):
		# Leaving the block removes the patch and migrates again: that migrate settles this one.
		with self.probe_patch('raise ValueError("dm_probe patch broke")\n') as patch:
			self.assertNotEqual(self.migrate(expect_ok=False).returncode, 0)
			failed = self.latest()
			self.assertEqual(failed.status, "In Progress")

		failed.reload()
		self.assertEqual(failed.status, "Failed")
		self.assertIn(patch, failed.failure_reason)
		self.assertIn("ValueError: dm_probe patch broke", failed.failure_reason)
		self.assertIn("dm_probe patch broke", failed.traceback)
		self.assertIn((patch, "Failed"), [(p.patch, p.status) for p in failed.patches])
		self.assertTrue(failed.finished_at)

		listed = {d["name"]: d for d in self.status()}
		self.assertEqual(listed[failed.name]["status"], "Failed")
		self.assertEqual(listed[self.latest().name]["status"], "Awaiting Verification")

	def test_hourly_job_marks_a_dead_migrate_failed(self):
		with self.probe_patch('raise RuntimeError("dm_probe stops here")\n') as patch:
			self.assert_failed_migrate_settles_as(f"Patch {patch} failed: RuntimeError: dm_probe stops here")

	def test_killed_migrate_is_marked_failed_naming_the_patch_it_was_in(self):
		marker = Path(tempfile.mkdtemp()) / "patch-started"
		with self.probe_patch(f'open("{marker}", "w").close()\nimport time\ntime.sleep(120)\n') as patch:
			child = spawn(self.site, "migrate", "--skip-search-index")
			try:
				for _ in range(600):
					if marker.exists() or child.poll() is not None:
						break
					time.sleep(0.1)
				self.assertTrue(marker.exists(), "the sleeping patch never started")
				running = self.latest()
				recording.settle_finished_migrates()
				running.reload()
				self.assertEqual(running.status, "In Progress", "a migrate still holding the lock was judged")
			finally:
				child.send_signal(signal.SIGKILL)
				child.communicate(timeout=30)
			fresh_snapshot()
			recording.settle_finished_migrates()

			running.reload()
			self.assertEqual(running.status, "Failed")
			self.assertEqual(
				running.failure_reason,
				f"The migrate process was killed or crashed; first pending patch: {patch}",
			)
		shutil.rmtree(marker.parent)

	def test_second_migrate_at_the_same_time_is_refused_and_records_nothing(self):
		self.migrate()
		before = self.latest().name
		lock = FileLock(os.path.abspath(frappe.get_site_path("locks", "bench_migrate.lock")))
		with lock:
			proc = self.migrate(expect_ok=False)
		self.assertNotEqual(proc.returncode, 0)
		self.assertIn("Failed to aquire lock", proc.stdout + proc.stderr)
		self.assertEqual(self.latest().name, before)

	def test_recording_that_fails_is_logged_and_the_migrate_goes_on(self):
		self.migrate()
		before = self.latest().name
		since = now_datetime()
		# A value the Select field refuses: inserting the Deployment fails for real.
		frappe.db.set_single_value("Deploy Manager Settings", "default_environment", "Moon")
		try:
			proc = self.migrate()
		finally:
			frappe.db.set_single_value("Deploy Manager Settings", "default_environment", "Production")
			frappe.db.commit()
		self.assertIn("recording failed in before_migrate", proc.stderr)
		self.assertEqual(self.latest().name, before)
		log = frappe.get_last_doc(
			"Error Log",
			filters={"method": "deploy_manager: before_migrate recording failed", "creation": (">=", since)},
		)
		self.assertIn("Moon", log.error)

	def test_skipped_patch_is_recorded_with_its_traceback(self):
		with self.probe_patch('raise ValueError("dm_probe skip me")\n') as patch:
			proc = bench_cmd(self.site, "migrate", "--skip-search-index", "--skip-failing")
			self.assertEqual(proc.returncode, 0, proc.stderr)
			doc = self.latest()
			self.assertEqual(doc.status, "Awaiting Verification")
			skipped = next(p for p in doc.patches if p.patch == patch)
			self.assertEqual(skipped.status, "Skipped")
			self.assertIn("dm_probe skip me", skipped.traceback)

	def test_later_after_migrate_hook_failing_leaves_the_deployment_failed(self):
		with self.probe_after_migrate('raise RuntimeError("dm_probe after_migrate broke")\n'):
			self.assert_failed_migrate_settles_as(
				"Migrate failed: RuntimeError: dm_probe after_migrate broke"
			)

	def test_later_hook_that_commits_then_fails_still_fails_the_deployment(self):
		with self.probe_after_migrate(
			'frappe.db.commit()\nraise RuntimeError("dm_probe broke after commit")\n'
		):
			self.assert_failed_migrate_settles_as(
				"Migrate failed: RuntimeError: dm_probe broke after commit",
				recorded_as="Awaiting Verification",
			)

	def test_tables_touched_after_our_hook_are_added_from_frappes_own_list(self):
		with self.probe_after_migrate('frappe.get_doc({"doctype": "Note", "title": "dm_probe"}).insert()\n'):
			self.migrate()
			doc = self.latest()
			self.assertNotIn("tabNote", doc.touched_tables.splitlines())
			recording.settle_finished_migrates()
			doc.reload()
			self.assertIn("tabNote", doc.touched_tables.splitlines())
			self.assertNotIn("tabInstalled", doc.touched_tables.splitlines())
			self.assertNotIn(doc.name, exit_notes.noted_deployments())

	def test_status_for_all_sites_is_one_json_document(self):
		self.migrate()
		data = json_of("all", "deploy-manager", "status", "--json", "--limit", "1")
		self.assertEqual(data["errors"], [])
		self.assertIn(self.latest().name, [d["name"] for d in data["deployments"] if d["site"] == self.site])

	def status(self, *args):
		data = json_of(self.site, "deploy-manager", "status", "--json", "--limit", "50", *args)
		self.assertEqual(data["errors"], [])
		return data["deployments"]
