"""Installing deploy_manager on a site used before, as `bench get-app` + `bench install-app` do."""

import os

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_bench_path

from deploy_manager.tests.fixtures import bench_cmd, list_app, second_site

APP = "deploy_manager"


class TestInstall(FrappeTestCase):
	def test_install_on_a_used_site_syncs_doctypes_and_records_the_baseline(self):
		site = second_site()
		if APP in bench_cmd(site, "list-apps").stdout:
			bench_cmd(site, "uninstall-app", APP, "--yes", "--no-backup", "--force", check=True)
		apps_txt = os.path.join(get_bench_path(), "sites", "apps.txt")
		with open(apps_txt) as f:
			listed = f.read()
		self.addCleanup(self.restore, apps_txt, listed)
		# The site is used (its app module map cached) while the app is not listed yet.
		with open(apps_txt, "w") as f:
			f.write("".join(f"{app}\n" for app in listed.split() if app != APP))
		bench_cmd(site, "list-apps", check=True)
		list_app(APP)

		installed = bench_cmd(site, "install-app", APP)
		self.addCleanup(bench_cmd, site, "uninstall-app", APP, "--yes", "--no-backup", "--force")
		self.assertEqual(installed.returncode, 0, installed.stdout + installed.stderr)
		self.assertNotIn("recording failed", installed.stderr)
		status = frappe.parse_json(bench_cmd(site, "deploy-manager", "status", "--json", check=True).stdout)
		self.assertEqual([d["source"] for d in status["deployments"]], ["Install"], status)
		# The state found, recorded and never judged: not left Awaiting Verification forever.
		[install] = status["deployments"]
		self.assertEqual(install["status"], "Baseline", install)
		self.assertFalse(install["verdict"])

	def restore(self, apps_txt: str, listed: str):
		with open(apps_txt, "w") as f:
			f.write(listed)
