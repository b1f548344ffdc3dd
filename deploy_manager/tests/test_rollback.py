"""A real rollback on the test site: the test app dm_probe moves to a commit whose patch changes data,
then `deploy-manager rollback` brings back its commit and the rows from the pre-deploy backup."""

import json
import os

import frappe
from frappe.tests.utils import FrappeTestCase

from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services.closing import FLAGS
from deploy_manager.tests.fixtures import (
	FOREIGN_PROGRAM,
	ProbeApp,
	bench_cmd,
	second_site,
	stop_supervised,
	supervised_pid,
	user_with,
)


class TestRollback(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.site = frappe.local.site
		cls.probe = ProbeApp.installed_for(cls)
		# The platform is left to detection: this bench runs in a container, with git checkouts.
		frappe.db.set_single_value(SETTINGS, {"pre_deploy_backup": "Always", "platform": ""})
		frappe.db.commit()
		cls.addClassCleanup(cls.reset_settings)

	@classmethod
	def reset_settings(cls):
		frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "In Production")
		frappe.db.commit()

	def deploy_a_data_change(self) -> tuple[str, str, str, str]:
		"""(commit before, commit after, the deployment, the ToDo its patch made)."""
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		before = self.probe.head
		marker = f"rollback-probe-{frappe.generate_hash(length=8)}"
		self.probe.add_patch(f'frappe.get_doc({{"doctype": "ToDo", "description": "{marker}"}}).insert()\n')
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		deployment = frappe.get_last_doc("Deployment", filters={"source": "Bench Migrate"})
		self.assertTrue(frappe.db.exists("ToDo", {"description": marker}))
		return before, self.probe.head, deployment.name, marker

	def roll_back(self, candidate: str, *args: str):
		# A rollback restarts supervisor's web server and workers: later tests expect them stopped.
		self.addCleanup(stop_supervised)
		return bench_cmd(
			self.site, "deploy-manager", "rollback", candidate, "--yes", "--accept-other-sites", *args
		)

	def site_flags(self) -> dict:
		config = frappe.get_file_json(frappe.get_site_path("site_config.json"))
		return {flag: config.get(flag) for flag in FLAGS}

	def test_candidates_plan_and_a_rollback_that_brings_back_code_and_rows(self):
		before, after, deployment, marker = self.deploy_a_data_change()
		listed = json.loads(bench_cmd(self.site, "deploy-manager", "candidates", "--json").stdout)[
			"candidates"
		]
		candidate = next(c for c in listed if c["deployment"] == deployment)
		self.assertTrue(candidate["restorable"], candidate)
		self.assertIn({"app": "dm_probe", "current": after, "target": before}, candidate["apps"])
		self.assertEqual(candidate["lost_since_backup"].get("tabToDo"), 1)

		dry = bench_cmd(self.site, "deploy-manager", "rollback", candidate["name"], check=True)
		self.assertIn(f"git -C apps/dm_probe checkout --detach {before}", dry.stdout)
		self.assertIn("Dry run: nothing changed", dry.stdout)
		self.assertEqual(self.probe.head, after)

		flags = self.site_flags()
		foreign = supervised_pid(FOREIGN_PROGRAM)
		done = self.roll_back(candidate["name"])
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		self.assertEqual(self.probe.head, before)
		self.assertEqual(supervised_pid(FOREIGN_PROGRAM), foreign, "another bench's program was restarted")
		self.assertFalse(frappe.db.exists("ToDo", {"description": marker}), "the patch's row is still there")
		self.assertEqual(self.site_flags(), flags)
		undone = frappe.get_doc("Deployment", deployment)
		self.assertEqual(undone.status, "Rolled Back")
		rollback = frappe.get_doc("Deployment", undone.rolled_back_by)
		self.assertEqual((rollback.source, rollback.rollback_of), ("Rollback", deployment))
		self.assertEqual(rollback.status, "Awaiting Verification", rollback.log)
		probe = next(row for row in rollback.apps if row.app == "dm_probe")
		self.assertEqual((probe.from_commit, probe.to_commit), (after, before))
		self.assertEqual(frappe.db.get_value("Backup Record", rollback.backup, "status"), "Verified")
		for step in ("safety backup", "check out dm_probe", "restore", "migrate", "clear cache", "restart"):
			self.assertIn(f"{step}: done in", rollback.log)
		# The history survived the restore: the deployment undone is still recorded after it.
		self.assertTrue(frappe.db.exists("Deployment", deployment))

	def test_every_record_of_ours_and_its_naming_series_survive_the_restore(self):
		_, after, deployment, _ = self.deploy_a_data_change()
		made = {
			doctype: self.record_of(doctype, after) for doctype in ("Bench Deployment", "Deploy Evidence")
		}
		done = self.roll_back(f"before-{deployment}")
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		for doctype, name in made.items():
			self.assertTrue(frappe.db.exists(doctype, name), f"{name} was lost by the restore")
			# The counter was put back too: the next name is a new one, not one handed out before.
			self.assertGreater(self.record_of(doctype, after), name)

	def record_of(self, doctype: str, commit: str) -> str:
		fields = {
			"Bench Deployment": {"status": "Completed", "strategy": "Canary", "canary": self.site},
			"Deploy Evidence": {"app": "dm_probe", "commit": commit, "kind": "Tests", "result": "Passed"},
		}[doctype]
		name = (
			frappe.get_doc({"doctype": doctype, "reason": "made by a rollback test", **fields}).insert().name
		)
		frappe.db.commit()
		return name

	def test_a_rollback_failing_half_way_keeps_the_flags_and_the_safety_backup(self):
		_, after, deployment, _ = self.deploy_a_data_change()
		common = os.path.join(frappe.get_site_path(".."), "common_site_config.json")
		original = frappe.get_file_json(common)
		flags = self.site_flags()
		with open(common, "w") as f:
			f.write(frappe.as_json({**original, "root_password": "not-the-password"}))
		try:
			failed = self.roll_back(f"before-{deployment}")
		finally:
			with open(common, "w") as f:
				f.write(frappe.as_json(original))
		self.assertNotEqual(failed.returncode, 0)
		self.assertIn("restore failed", failed.stderr)
		self.assertNotIn("not-the-password", failed.stderr + failed.stdout)
		self.assertEqual(self.site_flags(), flags)
		rollback = frappe.get_last_doc("Deployment", filters={"source": "Rollback"})
		self.assertEqual((rollback.status, rollback.rollback_of), ("Failed", deployment))
		self.assertIn("Safety backup: BKP-", rollback.failure_reason)
		self.assertNotIn("not-the-password", rollback.log)
		self.assertEqual(frappe.db.get_value("Backup Record", rollback.backup, "status"), "Verified")
		self.assertNotEqual(frappe.db.get_value("Deployment", deployment, "status"), "Rolled Back")
		self.probe_back_to(after)

	def test_a_backup_gone_missing_is_refused_before_anything_moves(self):
		_, after, deployment, _ = self.deploy_a_data_change()
		backup = frappe.db.get_value("Deployment", deployment, "backup")
		database = next(
			f.path for f in frappe.get_doc("Backup Record", backup).files if f.file_type == "Database"
		)
		rollbacks = frappe.db.count("Deployment", {"source": "Rollback"})
		os.rename(frappe.get_site_path(database), frappe.get_site_path(database) + ".away")
		try:
			refused = self.roll_back(f"before-{deployment}")
		finally:
			os.rename(frappe.get_site_path(database) + ".away", frappe.get_site_path(database))
			# The refusal marked it Missing: with its file back it verifies again (later checks of the
			# site would report a Missing backup).
			bench_cmd(self.site, "deploy-manager", "backup", "--verify", backup, check=True)
		self.assertNotEqual(refused.returncode, 0)
		self.assertIn(f"{backup} is Missing now", refused.stderr)
		self.assertEqual(self.probe.head, after)
		self.assertEqual(frappe.db.count("Deployment", {"source": "Rollback"}), rollbacks)

	def probe_back_to(self, commit: str):
		from deploy_manager.core.gitrepo import git

		git(self.probe.path, "checkout", "--quiet", "--detach", commit)

	def test_refusals(self):
		self.deploy_a_data_change()
		unknown = bench_cmd(self.site, "deploy-manager", "rollback", "before-DEP-1999-00001", "--yes")
		self.assertIn("no rollback candidate before-DEP-1999-00001", unknown.stderr)
		second_site()
		others = bench_cmd(self.site, "deploy-manager", "rollback", "--yes")
		self.assertIn("--accept-other-sites", others.stderr)

	def test_desk_shows_candidates_and_the_plan_but_only_to_deploy_managers(self):
		from deploy_manager.api import rollback_plan
		from deploy_manager.deploy_manager.report.rollback_candidates.rollback_candidates import execute

		_, _, deployment, _ = self.deploy_a_data_change()
		_, rows = execute({"restorable_only": 1})
		row = next(r for r in rows if r["deployment"] == deployment)
		self.assertEqual(row["restorable"], 1)
		self.assertIn(f"deploy-manager rollback before-{deployment}", row["command"])
		for user in ("Guest", user_with("dm-plain@example.com")):
			frappe.set_user(user)
			with self.assertRaises(frappe.PermissionError, msg=user):
				rollback_plan(deployment)
		frappe.set_user(user_with("dm-manager@example.com", "Deploy Manager"))
		try:
			shown = rollback_plan(deployment)
		finally:
			frappe.set_user("Administrator")
		self.assertIn("checkout --detach", shown["plan"])
		self.assertTrue(shown["command"].endswith(f"rollback before-{deployment} --yes"))

	def test_the_fast_path_restores_only_the_touched_tables_and_keeps_work_done_since(self):
		before, _, deployment, marker = self.deploy_a_data_change()
		touched = frappe.db.get_value("Deployment", deployment, "touched_tables").splitlines()
		self.assertIn("tabToDo", touched)
		self.assertNotIn("tabNote", touched)
		note = frappe.get_doc({"doctype": "Note", "title": f"written after {deployment}"}).insert()
		frappe.db.commit()
		dry = bench_cmd(self.site, "deploy-manager", "rollback", f"before-{deployment}", check=True)
		self.assertIn("Fast path offered (--fast): restore ", dry.stdout)
		done = self.roll_back(f"before-{deployment}", "--fast")
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		self.assertEqual(self.probe.head, before)
		self.assertFalse(frappe.db.exists("ToDo", {"description": marker}))
		self.assertTrue(frappe.db.exists("Note", note.name), "the fast path lost work done since the deploy")
		rollback = frappe.get_doc(
			"Deployment", frappe.db.get_value("Deployment", deployment, "rolled_back_by")
		)
		self.assertIn("fast path: restored", rollback.log)
		self.assertNotIn("tabSeries", rollback.log.split("fast path: restored")[1].splitlines()[0])
		# Names keep counting up: a new deployment gets a new name.
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		self.assertGreater(frappe.get_last_doc("Deployment").name, rollback.name)
