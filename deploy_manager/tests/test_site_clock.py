"""Times from files are read on the site's clock: on a site far east or far west of the server, a
backup file written a moment ago is a moment old, not hours old or hours in the future."""

import frappe
from frappe.tests.utils import FrappeTestCase

from deploy_manager.core.checks import PASS, Target
from deploy_manager.core.checks.backups import backups
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.services import site_facts
from deploy_manager.tests.fixtures import bench_cmd

# UTC+14 and UTC-11: whatever the server's zone, one of them is half a day away from it.
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")


class TestSiteClock(FrappeTestCase):
	def set_zone(self, zone: str):
		frappe.db.set_single_value("System Settings", "time_zone", zone)
		frappe.db.commit()
		frappe.clear_cache()

	def test_a_backup_file_written_now_is_minutes_old_in_any_time_zone(self):
		self.addCleanup(self.set_zone, frappe.db.get_single_value("System Settings", "time_zone"))
		for zone in ZONES:
			with self.subTest(zone=zone):
				self.set_zone(zone)
				self.assertEqual(site_facts.site_clock().zone, zone)
				bench_cmd(self.site, "backup", check=True)
				facts = site_facts._backup_facts(get_settings())
				# Backup Records taken earlier carry times of the zone they were taken in: files only.
				facts["newest_record"] = None
				result = backups(Target(extra={"backups": facts}))
				self.assertEqual(result.status, PASS, result.message)
				self.assertRegex(result.message, r"^newest backup \d min old \(.*-database\.sql\.gz, ")

	@property
	def site(self) -> str:
		return frappe.local.site
