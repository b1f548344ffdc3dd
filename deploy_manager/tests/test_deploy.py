"""`deploy-manager deploy` on the test site run as production runs it (web server, workers,
scheduler): the test app dm_probe goes from one commit to the next with a verified backup, a complete
log and a post-deploy verification, and a fault at each step leaves maintenance mode and the
scheduler as they were, the Deployment Failed naming the step, and the backup in place."""

import os
import signal
import time

import frappe

from deploy_manager.core.gitrepo import git
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import SETTINGS
from deploy_manager.tests.fixtures import (
	FOREIGN_PROGRAM,
	DeployTestCase,
	bench_cmd,
	fresh_snapshot,
	spawn,
	stop,
	supervised_pid,
	wait_until,
)


class TestDeploy(DeployTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		bench_cmd(cls.site, "migrate", "--skip-search-index", check=True)

	def setUp(self):
		super().setUp()
		# A flag set before the deploy must be set after it too: pause_scheduler is, maintenance is not.
		bench_cmd(self.site, "set-config", "pause_scheduler", "0", "--parse", check=True)
		self.addCleanup(bench_cmd, self.site, "set-config", "pause_scheduler", "0", "--parse")

	def deploy(self, *args: str):
		return bench_cmd(self.site, "deploy-manager", "deploy", *args)

	def latest_deployment(self):
		name = frappe.get_all(
			"Deployment",
			filters={"source": "Deploy Command"},
			order_by="creation desc",
			limit=1,
			pluck="name",
		)[0]
		return frappe.get_doc("Deployment", name)

	def assert_failed_at(self, step: str, flags: dict, result):
		self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
		self.assertEqual(self.flags(), flags)
		doc = self.latest_deployment()
		self.assertEqual(doc.status, "Failed", doc.log)
		self.assertTrue(doc.failure_reason.startswith(f"{step} failed"), doc.failure_reason)
		self.assertIn(doc.name, result.stderr)
		self.assertEqual(frappe.db.get_value("Backup Record", doc.backup, "status"), "Verified")
		return doc

	def settle_probe(self, patch: str):
		"""Leave dm_probe where the next test can start: the patch gone, migrated."""
		self.probe.remove_patch(patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)

	def test_a_deploy_to_a_commit_is_backed_up_logged_verified_and_monitored(self):
		marker = f"deploy-probe-{frappe.generate_hash(length=8)}"
		start, target, patch = self.probe.patch_ahead(
			f'frappe.get_doc({{"doctype": "ToDo", "description": "{marker}"}}).insert()\n'
		)
		dry = self.deploy("--app", f"dm_probe@{target}")
		self.assertEqual(dry.returncode, 0, dry.stderr)
		self.assertIn(f"dm_probe: {start[:10]} -> {target[:10]}", dry.stdout)
		self.assertIn("Dry run: nothing changed", dry.stdout)
		self.assertEqual(self.probe.head, start)

		flags = self.flags()
		web = f"{self.bench_name}-web:{self.bench_name}-frappe-web"
		pids = {name: supervised_pid(name) for name in (web, FOREIGN_PROGRAM)}
		done = self.deploy("--app", f"dm_probe@{target}", "--yes")
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		self.assertEqual(self.probe.head, target)
		self.assertTrue(frappe.db.exists("ToDo", {"description": marker}))
		self.assertEqual(self.flags(), flags)
		# Restarted as bench restarts this bench: its own programs, and no other bench's.
		self.assertNotIn(supervised_pid(web), (0, pids[web]))
		self.assertEqual(supervised_pid(FOREIGN_PROGRAM), pids[FOREIGN_PROGRAM])
		self.assertNotEqual(pids[FOREIGN_PROGRAM], 0, "the test bench runs another bench's program")

		doc = self.latest_deployment()
		self.assertEqual((doc.status, doc.verdict), ("Monitoring", "Confirm"), doc.log)
		self.assertIn(f"{doc.name}: Monitoring", done.stdout)
		probe = next(row for row in doc.apps if row.app == "dm_probe")
		self.assertEqual((probe.from_commit, probe.to_commit), (start, target))
		self.assertEqual([p.patch for p in doc.patches], [patch])
		self.assertIn("tabToDo", doc.touched_tables)
		self.assertEqual(frappe.db.get_value("Backup Record", doc.backup, "status"), "Verified")
		for step in ("backup", "check out dm_probe", "requirements of dm_probe", "migrate", "build dm_probe"):
			self.assertIn(f"{step}: done in", doc.log)
		self.assertIn("maintenance on: done", doc.log)
		self.assertLess(
			doc.log.index("clear cache: done"),
			doc.log.index("Maintenance mode and the scheduler are as they were"),
		)
		for step in ("clear cache", "restart", "post-deploy verification"):
			self.assertIn(step, doc.log)
		checks = frappe.get_all(
			"Verification Check",
			filters={"deployment": doc.name},
			fields=["phase", "verdict"],
			order_by="creation",
		)
		self.assertEqual([c.phase for c in checks], ["Preflight", "Post-deploy"])
		self.assertEqual(checks[1].verdict, "Confirm")
		# Our migrate hooks recorded into the deploy's own record: no second Deployment.
		self.assertFalse(
			frappe.db.exists("Deployment", {"source": "Bench Migrate", "creation": (">", doc.creation)})
		)

		again = self.deploy("--app", f"dm_probe@{target}", "--yes")
		self.assertEqual(again.returncode, 0)
		self.assertIn("Nothing to deploy", again.stdout)
		self.settle_probe(patch)

	def test_the_verdict_comes_from_the_new_code_the_restart_serves(self):
		"""Verified through nginx and supervisor's web server, which the deploy restarts: a key flow that
		only the new commit answers passes, so the verdict judged the new code, not the old."""
		marker = f"new-code-{frappe.generate_hash(length=8)}"
		start = self.probe.head
		target = self.probe.commit(
			"A page only the new code serves",
			{
				"dm_probe/api.py": "import frappe\n\n\n@frappe.whitelist(allow_guest=True)\n"
				f'def served():\n\treturn "{marker}"\n'
			},
		)
		git(self.probe.path, "checkout", "--quiet", "--detach", start)
		flow = {"path": "/api/method/dm_probe.api.served", "expected_text": marker}
		settings = frappe.get_single(SETTINGS)
		settings.append("key_flows", flow)
		settings.save()
		frappe.db.commit()
		self.configure(site_url=f"http://{self.site}")
		self.addCleanup(self.configure, site_url=f"http://127.0.0.1:{self.port}")
		self.addCleanup(self.without_key_flows)

		done = self.deploy("--app", f"dm_probe@{target}", "--yes")
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		doc = self.latest_deployment()
		check = frappe.get_last_doc(
			"Verification Check", filters={"deployment": doc.name, "phase": "Post-deploy"}
		)
		served = next(r for r in check.results if flow["path"] in r.check_name)
		self.assertEqual((served.status, doc.verdict), ("Pass", "Confirm"), served.message)

	def without_key_flows(self):
		settings = frappe.get_single(SETTINGS)
		settings.set("key_flows", [])
		settings.save()
		frappe.db.commit()

	def test_a_failing_patch_fails_at_migrate_with_the_site_open_and_the_rollback_plan(self):
		_start, target, patch = self.probe.patch_ahead(
			'frappe.get_doc({"doctype": "ToDo", "description": "half-way"}).insert()\n'
			'raise Exception("dm_probe patch fails half-way")\n'
		)
		flags = self.flags()
		result = self.deploy("--app", f"dm_probe@{target}", "--yes")
		doc = self.assert_failed_at("migrate", flags, result)
		self.assertFalse(self.flags()["maintenance_mode"])
		self.assertIn("dm_probe patch fails half-way", doc.failure_reason)
		self.assertIn(f"deploy-manager rollback before-{doc.name} --yes", doc.failure_reason)
		self.assertIn(f"git -C apps/dm_probe checkout --detach {_start}", doc.log)
		self.assertIn("dm_probe patch fails half-way", doc.log)  # the migrate's own output
		self.assertIn(patch, [p.patch for p in doc.patches if p.status == "Failed"])
		self.assertIn("Rollback plan", result.stderr)
		self.settle_probe(patch)

	def test_a_failing_build_fails_at_build(self):
		start = self.probe.head
		broken = self.probe.commit(
			"Broken bundle", {"dm_probe/public/js/dm_probe.bundle.js": "export const = ;\n"}
		)
		git(self.probe.path, "checkout", "--quiet", "--detach", start)
		flags = self.flags()
		result = self.deploy("--app", f"dm_probe@{broken}", "--yes")
		self.assert_failed_at("build dm_probe", flags, result)
		# An app without a public folder has nothing the Desk assets check waits for.
		git(self.probe.path, "rm", "-r", "--quiet", "dm_probe/public")
		self.probe.commit("Bundle removed", {})
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)

	def fails_untouched(self, step: str, message: str, files: dict[str, str]):
		"""A deploy to a commit with `files` fails at `step`, before the database: nothing to roll back,
		the code back where it was. Returns the Deployment."""
		start = self.probe.head
		broken = self.probe.commit(message, files)
		git(self.probe.path, "checkout", "--quiet", "--detach", start)
		flags = self.flags()
		result = self.deploy("--app", f"dm_probe@{broken}", "--yes")
		doc = self.assert_failed_at(step, flags, result)
		self.assertIn("Nothing to roll back: the database was not touched", doc.failure_reason)
		self.assertEqual(self.probe.head, start, "the code went back to what runs with the database")
		return doc

	def test_requirements_that_cannot_install_fail_before_the_database_is_touched(self):
		self.fails_untouched(
			"requirements of dm_probe", "Broken package metadata", {"pyproject.toml": "[project\nname = \n"}
		)

	def test_node_packages_that_cannot_install_fail_before_the_database_is_touched(self):
		package = '{"name": "dm_probe", "dependencies": {"dm-probe-no-such-package-anywhere": "1.0.0"}}\n'
		doc = self.fails_untouched(
			"node packages of dm_probe", "A node dependency nobody publishes", {"package.json": package}
		)
		# What runs is what ran before: the site is not judged by this failed deployment.
		self.assertTrue(doc.code_put_back)
		self.wait_until_healthy()

	def test_a_lost_database_connection_fails_the_deploy_with_the_flags_back(self):
		# The patch kills every connection of the site's database user: the deploy's, then its own.
		_start, target, patch = self.probe.patch_ahead(
			"for (conn,) in frappe.db.sql(\n"
			'\t"select id from information_schema.processlist where user = %s and id != connection_id()",\n'
			"\tfrappe.conf.db_user,\n"
			"):\n"
			'\tfrappe.db.sql(f"kill {conn}")\n'
			'frappe.db.sql("kill %s" % frappe.db.sql("select connection_id()")[0][0])\n'
		)
		flags = self.flags()
		result = self.deploy("--app", f"dm_probe@{target}", "--yes")
		fresh_snapshot()
		doc = self.assert_failed_at("migrate", flags, result)
		# What pymysql says of a connection the server dropped.
		self.assertIn("InterfaceError", doc.failure_reason)
		self.settle_probe(patch)

	def slow_deploy(self) -> tuple:
		"""A deploy whose migrate runs a patch that sleeps; returns (process, patch, flags) once the
		migrate has started."""
		_start, target, patch = self.probe.patch_ahead("import time\ntime.sleep(90)\n")
		flags = self.flags()
		process = spawn(self.site, "deploy-manager", "deploy", "--app", f"dm_probe@{target}", "--yes")
		self.addCleanup(stop, process)
		wait_until(
			lambda: (
				"migrate started" in (self.latest_deployment().log or "")
				if frappe.db.exists("Deployment", {"source": "Deploy Command", "status": "In Progress"})
				else None
			),
			120,
			"the deploy's migrate to start",
		)
		return process, patch, flags

	def test_a_deploy_stopped_by_sigterm_puts_the_flags_back_and_a_second_deploy_is_refused(self):
		process, patch, flags = self.slow_deploy()
		doc = self.latest_deployment()
		second = self.deploy("--app", "dm_probe", "--yes")
		self.assertEqual(second.returncode, 1)
		self.assertIn(f"{doc.name} (a deploy) on {self.site}", second.stderr)
		self.assertEqual(self.flags(), {"maintenance_mode": 1, "pause_scheduler": 1})

		os.kill(process.pid, signal.SIGTERM)
		process.communicate(timeout=60)
		fresh_snapshot()
		self.assertEqual(self.flags(), flags)
		doc.reload()
		self.assertEqual(doc.status, "Failed")
		self.assertIn("stopped by signal SIGTERM", doc.failure_reason)
		self.assertTrue(doc.failure_reason.startswith("migrate failed"), doc.failure_reason)
		self.settle_probe(patch)

	def test_a_killed_deploy_is_found_and_its_flags_put_back_by_the_next_command(self):
		process, patch, flags = self.slow_deploy()
		doc = self.latest_deployment()
		migrate_pid = int(doc.log.rsplit("migrate started (pid ", 1)[1].split(")")[0])
		os.kill(process.pid, signal.SIGKILL)
		os.kill(migrate_pid, signal.SIGKILL)
		process.communicate(timeout=60)
		self.assertEqual(self.flags(), {"maintenance_mode": 1, "pause_scheduler": 1})

		result = bench_cmd(self.site, "deploy-manager", "preflight", "--app", "dm_probe")
		self.assertIn("was interrupted", result.stderr)
		self.assertEqual(self.flags(), flags)
		doc.reload()
		self.assertEqual(doc.status, "Failed")
		self.assertTrue(doc.failure_reason.startswith("migrate interrupted"), doc.failure_reason)
		time.sleep(1)  # the killed migrate's lock file is released with its process
		self.settle_probe(patch)
