"""Backups on the test site: taken by the real `deploy-manager backup` command through Frappe's backup
API, proven by reading them and by restore drills into a scratch database, kept while they are
rollback points."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime
from frappe.utils.backups import delete_temp_backups, get_backup_path

from deploy_manager.api import backup_now, check_backup
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services import backups
from deploy_manager.tests.fixtures import bench_cmd, user_with


def backup_cmd(*args: str) -> tuple[dict, int]:
	proc = bench_cmd(frappe.local.site, "deploy-manager", "backup", "--json", *args)
	try:
		return json.loads(proc.stdout), proc.returncode
	except ValueError:
		raise AssertionError(
			f"backup {args} printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
		)


def site_path(relative: str) -> str:
	return os.path.join(frappe.get_site_path(), relative)


class TestBackups(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		before = set(frappe.get_all("Backup Record", pluck="name"))
		# Records these tests damage or lose would fail every later verification of the site.
		cls.addClassCleanup(cls.remove_records_but, before)

	@classmethod
	def remove_records_but(cls, kept: set):
		frappe.db.rollback()
		for name in set(frappe.get_all("Backup Record", pluck="name")) - kept:
			frappe.db.set_value("Deployment", {"backup": name}, "backup", None)
			frappe.delete_doc("Backup Record", name, ignore_permissions=True, force=True)
			shutil.rmtree(backups.folder(name), ignore_errors=True)
		frappe.db.commit()

	def take(self, *args: str) -> frappe._dict:
		report, code = backup_cmd(*args)
		self.assertEqual(code, 0, report)
		return frappe._dict(report["backups"][0])

	def test_backup_with_files_is_verified_with_the_right_checksums(self):
		taken = self.take("--with-files")
		doc = frappe.get_doc("Backup Record", taken.name)
		self.assertEqual((doc.status, doc.trigger), ("Verified", "Manual"))
		self.assertEqual(
			{f.file_type for f in doc.files}, {"Database", "Public Files", "Private Files", "Site Config"}
		)
		for row in doc.files:
			self.assertTrue(row.path.startswith(f"private/deploy_manager/backups/{doc.name}/"), row.path)
			with open(site_path(row.path), "rb") as f:
				self.assertEqual(row.sha256, hashlib.sha256(f.read()).hexdigest(), row.file_type)
			self.assertEqual(row.size, os.path.getsize(site_path(row.path)))
		counts = json.loads(doc.table_counts)
		self.assertEqual(counts["tabUser"], frappe.db.count("User"))
		self.assertIn("frappe", {a.app for a in doc.apps})
		self.assertTrue(all(len(a.commit) == 40 for a in doc.apps if a.app == "frappe"))

	def test_a_damaged_file_turns_the_record_corrupt_and_a_vanished_one_missing(self):
		taken = self.take()
		database = site_path(next(f["path"] for f in taken.files if f["type"] == "Database"))
		with open(database, "r+b") as f:
			f.seek(os.path.getsize(database) // 2)
			f.write(b"\x00" * 64)
		report, code = backup_cmd("--verify", taken.name)
		self.assertEqual((report["backups"][0]["status"], code), ("Corrupt", 1))
		self.assertIn("Database:", report["backups"][0]["message"])
		os.remove(database)
		report, code = backup_cmd("--verify", taken.name)
		self.assertEqual((report["backups"][0]["status"], code), ("Missing", 1))
		self.assertTrue(os.path.isdir(os.path.dirname(database)), "verification deleted something")

	def test_a_drill_restores_into_a_scratch_database_and_leaves_the_site_untouched(self):
		taken = self.take()
		users, databases = frappe.db.count("User"), self.scratch_databases()
		report, code = backup_cmd("--drill", taken.name)
		self.assertEqual((report["backups"][0]["drill"]["status"], code), ("Passed", 0), report)
		self.assertIn("restored as recorded", report["backups"][0]["drill"]["message"])
		self.assertEqual(frappe.db.count("User"), users)
		self.assertEqual(self.scratch_databases(), databases, "a scratch database was left behind")

	def test_a_drill_that_finds_other_rows_than_recorded_fails(self):
		taken = self.take()
		counts = json.loads(frappe.db.get_value("Backup Record", taken.name, "table_counts"))
		counts["tabUser"] += 7
		frappe.db.set_value("Backup Record", taken.name, "table_counts", json.dumps(counts))
		frappe.db.commit()
		report, code = backup_cmd("--drill", taken.name)
		drill = report["backups"][0]["drill"]
		self.assertEqual((drill["status"], code), ("Failed", 1))
		self.assertIn(
			f"tabUser: {counts['tabUser']} at backup, {counts['tabUser'] - 7} restored", drill["message"]
		)
		self.assertEqual(self.scratch_databases(), [])

	def scratch_databases(self) -> list:
		return frappe.db.sql("show databases like 'dm\\_drill\\_%'", pluck=True)

	def test_our_folder_survives_frappes_clean_up(self):
		taken = self.take()
		ours = site_path(next(f["path"] for f in taken.files if f["type"] == "Database"))
		frappes = os.path.join(get_backup_path(), "20200101_000000-old-database.sql.gz")
		os.makedirs(get_backup_path(), exist_ok=True)
		shutil.copy(ours, frappes)
		# Frappe judges age by ctime, which cannot be set back: a zero-hour horizon makes every
		# file in its folder old enough, as a day does in production.
		delete_temp_backups(older_than=0)
		self.assertFalse(os.path.exists(frappes), "Frappe's clean-up did not run")
		self.assertTrue(os.path.exists(ours))

	def test_retention_keeps_rollback_points_and_deletes_only_old_others(self):
		point, old, recent = self.take(), self.take(), self.take()
		deployment = frappe.get_all("Deployment", order_by="creation desc", limit=1, pluck="name")[0]
		frappe.db.set_value("Deployment", deployment, "backup", point.name)
		for name in (point.name, old.name):
			frappe.db.set_value("Backup Record", name, "taken_at", add_to_date(now_datetime(), days=-30))
		frappe.db.commit()

		dry = {d["name"]: d for d in backups.keep(apply=False)}
		self.assertEqual(dry[point.name]["action"], "keep")
		self.assertIn(deployment, dry[point.name]["reason"])
		self.assertEqual(dry[old.name]["action"], "delete")
		self.assertEqual(dry[recent.name]["action"], "keep")
		self.assertTrue(os.path.isdir(backups.folder(old.name)), "the dry run deleted something")

		backups.keep(apply=True)
		self.assertFalse(os.path.exists(backups.folder(old.name)))
		self.assertTrue(os.path.isdir(backups.folder(point.name)))
		deleted = frappe.get_doc("Backup Record", old.name)
		self.assertEqual(deleted.status, "Deleted")
		self.assertIn("not a rollback point", deleted.status_message)
		self.assertTrue(frappe.db.get_value("Backup Record", point.name, "rollback_point"))

	def test_existing_backups_are_imported_once_and_verified(self):
		bench_cmd(frappe.local.site, "backup", check=True)
		report, code = backup_cmd("--import")
		self.assertEqual(code, 0, report)
		imported = {b["name"]: b for b in report["backups"]}
		self.assertTrue(imported)
		self.assertEqual({b["trigger"] for b in imported.values()}, {"Imported"})
		self.assertEqual({b["status"] for b in imported.values()}, {"Verified"})
		again, _ = backup_cmd("--import")
		self.assertEqual(again["backups"], [])
		# Kept in the records' own folders: Frappe's clean-up of its folder does not lose them.
		delete_temp_backups(older_than=0)
		for name in imported:
			report, code = backup_cmd("--verify", name)
			self.assertEqual((report["backups"][0]["status"], code), ("Verified", 0), report)

	def test_a_path_outside_the_site_is_refused(self):
		proc = bench_cmd(frappe.local.site, "deploy-manager", "backup", "--import", "/etc")
		self.assertNotEqual(proc.returncode, 0)
		self.assertIn("outside", proc.stderr + proc.stdout)

	def test_pre_deploy_backup_is_taken_on_migrate_and_linked(self):
		frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "Always")
		frappe.db.commit()
		try:
			bench_cmd(frappe.local.site, "migrate", "--skip-search-index", check=True)
		finally:
			frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "In Production")
			frappe.db.commit()
		deployment = frappe.get_last_doc("Deployment")
		self.assertTrue(deployment.backup, deployment.log)
		record = frappe.get_doc("Backup Record", deployment.backup)
		self.assertEqual(
			(record.trigger, record.status, record.deployment), ("Pre-deploy", "Verified", deployment.name)
		)
		self.assertIn(f"Pre-deploy backup {record.name} taken and verified", deployment.log)

	def test_under_bench_update_its_own_backup_is_the_pre_deploy_backup(self):
		"""What `bench update` does to a site, run by a program named bench with the argument update:
		close it, back it up, migrate, open it. No second dump is taken: the record holds bench's file."""
		site = frappe.local.site
		helper = f"{sys.executable} -m frappe.utils.bench_helper frappe --site {site}"
		script = os.path.join(frappe.get_site_path("private"), "bench")
		with open(script, "w") as f:
			f.write(
				f"#!/bin/sh\nset -e\ncd {os.path.abspath(frappe.get_site_path('..'))}\n"
				f"{helper} set-config maintenance_mode 1\n{helper} set-config pause_scheduler 1\n"
				f"{helper} backup\n{helper} migrate --skip-search-index\n"
				f"{helper} set-config maintenance_mode 0\n{helper} set-config pause_scheduler 0\n"
			)
		os.chmod(script, 0o755)
		self.addCleanup(os.remove, script)
		frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "Always")
		frappe.db.commit()
		try:
			subprocess.run([script, "update"], check=True, capture_output=True, timeout=600)
		finally:
			frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "In Production")
			frappe.db.commit()
		frappe.db.rollback()
		deployment = frappe.get_last_doc("Deployment")
		record = frappe.get_doc("Backup Record", deployment.backup)
		self.assertEqual(
			(record.trigger, record.status, record.deployment), ("Pre-deploy", "Verified", deployment.name)
		)
		self.assertIn("reused from bench update's", deployment.log)
		database = next(row for row in record.files if row.file_type == "Database")
		benchs = os.path.join(os.path.abspath(get_backup_path()), os.path.basename(database.path))
		self.assertTrue(os.path.samefile(backups.path_of(database.path), benchs), "a second dump was taken")

	def test_a_failed_pre_deploy_backup_is_recorded_and_stops_the_migrate_only_when_asked(self):
		ours = os.path.dirname(backups.folder("x"))
		os.makedirs(ours, exist_ok=True)
		frappe.db.set_single_value(SETTINGS, "pre_deploy_backup", "Always")
		frappe.db.commit()
		os.chmod(ours, 0o555)  # the staging folder cannot be made: the backup fails
		try:
			going_on = bench_cmd(frappe.local.site, "migrate", "--skip-search-index")
			went_on = frappe.get_last_doc("Deployment")
			frappe.db.set_single_value(SETTINGS, "stop_on_backup_failure", 1)
			frappe.db.commit()
			stopped = bench_cmd(frappe.local.site, "migrate", "--skip-search-index")
		finally:
			os.chmod(ours, 0o755)
			frappe.db.set_single_value(
				SETTINGS, {"pre_deploy_backup": "In Production", "stop_on_backup_failure": 0}
			)
			frappe.db.commit()
		self.assertEqual(going_on.returncode, 0, going_on.stderr)
		self.assertIn("Pre-deploy backup failed", went_on.log)
		self.assertEqual(went_on.status, "Awaiting Verification")
		self.assertNotEqual(stopped.returncode, 0)
		self.assertIn("Migrate stopped: the pre-deploy backup failed", stopped.stderr + stopped.stdout)


class TestBackupPermissions(FrappeTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")

	def test_guest_and_a_plain_user_may_neither_back_up_nor_check(self):
		name = frappe.get_all("Backup Record", limit=1, pluck="name") or ["BKP-1999-00001"]
		for user in ("Guest", user_with("dm-plain@example.com")):
			frappe.set_user(user)
			with self.assertRaises(frappe.PermissionError, msg=user):
				backup_now()
			with self.assertRaises(frappe.PermissionError, msg=user):
				check_backup(name[0])

	def test_a_deploy_manager_may_queue_them(self):
		frappe.set_user(user_with("dm-manager@example.com", "Deploy Manager"))
		self.assertIn("queued", backup_now())
		with self.assertRaises(frappe.DoesNotExistError):
			check_backup("BKP-1999-99999")


class TestSecretsInTracebacks(FrappeTestCase):
	"""Frappe logs a timed-out or failed job with every frame's locals, redacting only names such as
	password, secret, token and key: the backup encryption key is held where no such name covers it."""

	def test_the_backup_encryption_key_stays_out_of_a_traceback_with_locals(self):
		self.addCleanup(frappe.local.conf.pop, "backup_encryption_key", None)
		frappe.local.conf.backup_encryption_key = "dm-tests-gpg-passphrase-4f1c"

		def logged(passphrase) -> str:
			try:
				raise TimeoutError("Task exceeded maximum timeout value")
			except TimeoutError:
				return frappe.get_traceback(with_context=True)

		# A plain str under that name is shown: the scan would see a leak.
		self.assertIn("dm-tests-gpg-passphrase-4f1c", logged(str(backups.backup_encryption_key())))
		held = logged(backups.backup_encryption_key())
		self.assertNotIn("dm-tests-gpg-passphrase-4f1c", held)
		self.assertIn("passphrase = '********'", held)
