"""`bench --site all deploy-manager deploy`: the code moves once, the canary (the test site, served,
with workers and the scheduler) is deployed and verified first, then every other site of the bench
(deploy_manager installed on each for the test, each served on its own port)."""

import json

import frappe
from frappe.utils import get_sites

from deploy_manager.core.gitrepo import git
from deploy_manager.tests.fixtures import DeployTestCase, bench_cmd, free_port, second_site, serve, stop

BODY = 'frappe.get_doc({"doctype": "ToDo", "description": "bench deploy"}).insert()\n'


class TestBenchDeploy(DeployTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		second_site()
		cls.others = [site for site in get_sites() if site != cls.site]
		for site in cls.others:
			cls.make_healthy(site)

	@classmethod
	def make_healthy(cls, site: str):
		"""deploy_manager on `site`, served on its own port, in Development, with a random password."""
		installed = bench_cmd(site, "list-apps").stdout
		if "deploy_manager" not in installed:
			bench_cmd(site, "install-app", "deploy_manager", check=True)
			cls.addClassCleanup(
				bench_cmd, site, "uninstall-app", "deploy_manager", "--yes", "--no-backup", "--force"
			)
		port = free_port()
		cls.processes[f"web {site}"] = serve(site, port)
		settings = {
			"default_environment": "Development",
			"site_url": f"http://127.0.0.1:{port}",
		}
		# A site the tests did not make (the demo site) gets its own Settings back.
		saved = {
			field: json.loads(
				bench_cmd(
					site,
					"execute",
					"frappe.db.get_single_value",
					"--args",
					json.dumps(["Deploy Manager Settings", field]),
					check=True,
				).stdout
				or '""'
			)
			for field in settings
		}
		cls.addClassCleanup(cls.set_settings, site, saved)
		cls.set_settings(site, settings)
		# A well-known password fails the site's security check; the one the site had goes back.
		where = "where doctype = 'User' and name = 'Administrator' and fieldname = 'password'"
		found = bench_cmd(
			site, "execute", "frappe.db.sql", "--args", json.dumps([f"select password from __Auth {where}"])
		)
		[[saved]] = json.loads(found.stdout)
		put_back = json.dumps([f"update __Auth set password = %s {where}", [saved]])
		cls.addClassCleanup(bench_cmd, site, "execute", "frappe.db.sql", "--args", put_back, check=True)
		bench_cmd(site, "set-admin-password", frappe.generate_hash(), check=True)
		# No scheduler process has served it while supervisor's is stopped: its overdue jobs would be
		# judged as a scheduler that is not ticking. Off, it is a warning in Development.
		if json.loads(
			bench_cmd(
				site,
				"execute",
				"frappe.db.get_single_value",
				"--args",
				'["System Settings", "enable_scheduler"]',
			).stdout
			or "0"
		):
			bench_cmd(site, "disable-scheduler", check=True)
			cls.addClassCleanup(bench_cmd, site, "enable-scheduler", check=True)

	@staticmethod
	def set_settings(site: str, values: dict):
		bench_cmd(
			site,
			"execute",
			"frappe.db.set_single_value",
			"--args",
			json.dumps(["Deploy Manager Settings", values]),
			check=True,
		)

	def now_on_every_site(self) -> dict[str, str]:
		"""Each site's now, on its own clock: sites of one bench may keep different time zones."""
		return {
			site: json.loads(bench_cmd(site, "execute", "frappe.utils.now", check=True).stdout)[:19]
			for site in self.others
		}

	def deployments_of(self, site: str, since: str) -> list[dict]:
		found = bench_cmd(site, "deploy-manager", "status", "--json", "--limit", "3").stdout
		return [
			d
			for d in json.loads(found)["deployments"]
			if d["source"] == "Deploy Command" and str(d["started_at"]) >= since
		]

	def test_the_canary_first_then_every_site_one_at_a_time(self):
		_start, target, patch = self.probe.patch_ahead(BODY)
		flags = {site: self.flags(site) for site in [self.site, *self.others]}
		since = self.now_on_every_site()
		result = _all(target, self.site)
		self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
		self.assertEqual(self.probe.head, target)
		self.assertEqual({site: self.flags(site) for site in flags}, flags)

		record = frappe.get_last_doc("Bench Deployment")
		self.assertEqual((record.status, record.strategy, record.canary), ("Completed", "Canary", self.site))
		self.assertEqual([row.site for row in record.sites], [self.site, *self.others])
		self.assertEqual({row.status for row in record.sites}, {"Monitoring"}, record.log)
		canary = frappe.get_doc("Deployment", record.sites[0].deployment)
		self.assertEqual(canary.bench_deployment, f"{record.name} on {self.site}")
		self.assertIn("check out dm_probe: done", canary.log)
		for site in self.others:
			[other] = self.deployments_of(site, since[site])
			self.assertEqual(other["status"], "Monitoring")
			self.assertNotIn("dm_probe", [app["app"] for app in other["apps"]], "not installed there")
		self.probe.remove_patch(patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)

	def test_a_canary_that_says_roll_back_stops_before_the_other_sites(self):
		start, target, patch = self.probe.patch_ahead(BODY)
		flags = {site: self.flags(site) for site in [self.site, *self.others]}
		since = self.now_on_every_site()
		stop(self.processes.pop("web"))  # the canary stops answering
		try:
			result = _all(target, self.site)
		finally:
			self.processes["web"] = serve(self.site, self.port)
		self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
		self.assertIn(f"{self.site} is Rollback Recommended: stopped; the code went back", result.stdout)
		self.assertEqual(self.probe.head, start, "the other sites run the code they ran before")
		self.assertEqual({site: self.flags(site) for site in flags}, flags)
		record = frappe.get_last_doc("Bench Deployment")
		self.assertEqual(record.status, "Stopped")
		self.assertEqual(
			[row.status for row in record.sites], ["Rollback Recommended"] + ["Waiting"] * len(self.others)
		)
		for site in self.others:
			self.assertEqual(self.deployments_of(site, since[site]), [], f"{site} was deployed")
		# The canary migrated to the patch: bring it back to a state the next test can start from.
		git(self.probe.path, "checkout", "--quiet", "--detach", target)
		self.probe.remove_patch(patch)
		bench_cmd(self.site, "migrate", "--skip-search-index", check=True)


def _all(target: str, canary: str):
	return bench_cmd(
		"all", "deploy-manager", "deploy", "--app", f"dm_probe@{target}", "--yes", "--canary", canary
	)
