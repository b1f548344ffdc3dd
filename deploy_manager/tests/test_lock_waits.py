"""No step waits forever on a database lock: with a connection holding `tabToDo` in an open
transaction (as a web worker whose request never closed does), a rollback's restore and a deploy's
migrate end the site's own leftover and finish, naming it in their log; a blocker of another database
user is named, never ended, and stops the step at the bound with the site put back."""

import contextlib
import subprocess

import frappe
import pymysql

from deploy_manager.core.checks import WARN, Target
from deploy_manager.core.checks.migrations import migrations
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.services import recording, site_facts
from deploy_manager.services.backups import admin_connection
from deploy_manager.tests.fixtures import DeployTestCase, bench_cmd, fresh_snapshot, spawn

# Seconds a step may wait for a lock in these tests; every command gets far more than that to end.
BOUND = 15
ENDS_WITHIN = 600
OUTSIDER = "dm_lock_outsider"


class TestLockWaits(DeployTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		saved = {
			f: frappe.db.get_single_value(SETTINGS, f) for f in ("lock_wait_timeout", "pre_deploy_backup")
		}
		cls.addClassCleanup(cls.configure, **saved)
		cls.configure(lock_wait_timeout=BOUND, pre_deploy_backup="Always")

	def hold_todo(self, user: str | None = None, password: str | None = None):
		"""A connection idle in an open transaction that read tabToDo: it holds the table's metadata
		lock until it ends. As the site's own user from this machine unless told otherwise."""
		conf = frappe.conf
		connection = pymysql.connect(
			host=conf.db_host or "127.0.0.1",
			user=user or conf.db_user or conf.db_name,
			password=password or conf.db_password,
			database=conf.db_name,
		)
		self.addCleanup(close_quietly, connection)
		with connection.cursor() as cursor:
			cursor.execute("select name from tabToDo limit 1")
			cursor.fetchall()
		return connection

	def run_bench(self, *args: str) -> subprocess.CompletedProcess:
		child = spawn(self.site, *args)
		try:
			out, err = child.communicate(timeout=ENDS_WITHIN)
		except subprocess.TimeoutExpired:
			child.kill()
			out, err = child.communicate()
			self.fail(f"`{' '.join(args)}` did not end within {ENDS_WITHIN} s:\n{out}\n{err}")
		fresh_snapshot()
		return subprocess.CompletedProcess(child.args, child.returncode, out, err)

	def alter_todo_ahead(self) -> str:
		"""A commit of dm_probe whose patch alters tabToDo; the column goes again when the test ends."""
		_, target, patch = self.probe.patch_ahead(
			'frappe.db.sql_ddl("alter table `tabToDo` add column `dm_lock_probe` int")\n'
		)
		self.addCleanup(self.settle, patch)
		return target

	def settle(self, patch: str):
		self.probe.ensure_installed(self.site)  # back on its branch, where the next commit goes
		if "dm_lock_probe" in frappe.db.get_table_columns("ToDo"):
			frappe.db.sql_ddl("alter table `tabToDo` drop column `dm_lock_probe`")
		self.probe.remove_patch(patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)

	def latest(self, source: str):
		name = frappe.get_all(
			"Deployment", filters={"source": source}, order_by="creation desc", limit=1, pluck="name"
		)[0]
		return frappe.get_doc("Deployment", name)

	def test_a_deploy_whose_patch_alters_todo_ends_the_sites_leftover_and_deploys(self):
		target = self.alter_todo_ahead()
		leftover = self.hold_todo()
		done = self.run_bench("deploy-manager", "deploy", "--app", f"dm_probe@{target}", "--yes")
		doc = self.latest("Deploy Command")
		self.assertNotEqual(doc.status, "Failed", doc.failure_reason or doc.log)
		self.assertIn(f"migrate: ended the site's leftover connection {leftover.thread_id()}", doc.log)
		self.assertIn("in an open transaction", doc.log)
		self.assertIn(f"ended the site's leftover connection {leftover.thread_id()}", done.stderr)
		self.assertIn("dm_lock_probe", frappe.db.get_table_columns("ToDo"))
		self.assertEqual(self.probe.head, target)

	def test_a_rollback_ends_the_sites_leftover_and_restores(self):
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		before = self.probe.head
		marker = f"lock-probe-{frappe.generate_hash(length=8)}"
		patch = self.probe.add_patch(
			f'frappe.get_doc({{"doctype": "ToDo", "description": "{marker}"}}).insert()\n'
		)
		self.addCleanup(self.settle, patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		undone = self.latest("Bench Migrate").name
		leftover = self.hold_todo()
		done = self.run_bench(
			"deploy-manager", "rollback", f"before-{undone}", "--yes", "--accept-other-sites"
		)
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		doc = self.latest("Rollback")
		self.assertEqual(doc.rollback_of, undone)
		self.assertIn(f"restore: ended the site's leftover connection {leftover.thread_id()}", doc.log)
		self.assertEqual(self.probe.head, before)
		self.assertFalse(frappe.db.exists("ToDo", {"description": marker}))

	def test_a_blocker_of_another_user_stops_the_migrate_at_the_bound_named_and_never_ended(self):
		password = frappe.generate_hash(length=16)
		with admin_connection() as root, root.cursor() as cursor:
			cursor.execute(f"create or replace user '{OUTSIDER}'@'%' identified by '{password}'")
			cursor.execute(f"grant select on `{frappe.conf.db_name}`.* to '{OUTSIDER}'@'%'")
		self.addCleanup(self.drop_outsider)
		target = self.alter_todo_ahead()
		blocker = self.hold_todo(OUTSIDER, password)
		flags = self.flags()
		done = self.run_bench("deploy-manager", "deploy", "--app", f"dm_probe@{target}", "--yes")
		self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
		doc = self.latest("Deploy Command")
		self.assertEqual(doc.status, "Failed")
		self.assertIn("s (the bound) for a lock on", doc.failure_reason)
		self.assertIn(f"connection {blocker.thread_id()} ({OUTSIDER}@", doc.failure_reason)
		self.assertIn("never ended", doc.failure_reason)
		self.assertIn(f"({OUTSIDER}@", done.stderr)
		self.assertEqual(self.flags(), flags)
		blocker.ping(reconnect=False)  # alive: not ours to end
		self.assertNotIn("dm_lock_probe", frappe.db.get_table_columns("ToDo"))

	def test_a_bench_migrate_on_an_open_site_stops_at_the_bound_and_its_record_names_the_holder(self):
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		patch = self.probe.add_patch(
			'frappe.db.sql_ddl("alter table `tabToDo` add column `dm_lock_probe` int")\n'
		)
		self.addCleanup(self.settle, patch)
		holder = self.hold_todo()
		done = self.run_bench("migrate", "--skip-search-index")
		self.assertNotEqual(done.returncode, 0, done.stdout)
		self.assertIn(f"held by connection {holder.thread_id()}", done.stderr)
		holder.close()
		recording.settle_finished_migrates()  # the hourly job, as the next migrate would
		doc = self.latest("Bench Migrate")
		self.assertEqual(doc.status, "Failed")
		self.assertTrue(
			doc.failure_reason.startswith("Migrate stopped by the lock guard: waited"), doc.failure_reason
		)
		self.assertIn(f"connection {holder.thread_id()} (", doc.failure_reason)
		self.assertIn("the site is open", doc.failure_reason)
		self.assertIn(f"held by connection {holder.thread_id()}", doc.lock_waits)
		check = migrations(Target(extra={"migrations": site_facts._migration_facts(doc.name)}))
		self.assertIn("Migrate stopped by the lock guard", check.message)

	def test_a_bench_migrate_on_a_closed_site_ends_the_leftover_and_its_check_warns(self):
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)
		patch = self.probe.add_patch(
			'frappe.db.sql_ddl("alter table `tabToDo` add column `dm_lock_probe` int")\n'
		)
		self.addCleanup(self.settle, patch)
		bench_cmd(self.site, "set-config", "maintenance_mode", "1", "--parse", check=True)
		self.addCleanup(bench_cmd, self.site, "set-config", "maintenance_mode", "0", "--parse", check=True)
		leftover = self.hold_todo()
		done = self.run_bench("migrate", "--skip-search-index")
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		doc = self.latest("Bench Migrate")
		self.assertNotEqual(doc.status, "Failed", doc.failure_reason)
		self.assertIn(f"migrate: ended the site's leftover connection {leftover.thread_id()}", doc.lock_waits)
		self.assertIn("dm_lock_probe", frappe.db.get_table_columns("ToDo"))
		check = migrations(Target(extra={"migrations": site_facts._migration_facts(doc.name)}))
		self.assertEqual(check.status, WARN, check.message)
		self.assertIn("waited for database locks", check.message)
		self.assertIn(f"held by connection {leftover.thread_id()}", check.message)

	def drop_outsider(self):
		with admin_connection() as root, root.cursor() as cursor:
			cursor.execute(f"drop user if exists '{OUTSIDER}'@'%'")


def close_quietly(connection):
	with contextlib.suppress(pymysql.MySQLError):
		connection.close()  # a leftover the guard ended is closed already
