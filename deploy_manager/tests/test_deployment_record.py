# Copyright (c) 2026, deploy_manager developers and Contributors
# See license.txt

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from deploy_manager.core.deployments import AppState, compare
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.tests.fixtures import user_with

RECORDS = ("Deployment", "Backup Record", "Verification Check", "Deploy Manager Settings")


class TestDeployment(FrappeTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")

	def deployment(self, **fields):
		"""A finished Manual Deployment, deleted after the test: user_with commits, and an unfinished
		one left behind would block every later preflight."""
		doc = frappe.get_doc(
			{
				"doctype": "Deployment",
				"source": "Manual",
				"site": frappe.local.site,
				"status": lifecycle.CONFIRMED,
				**fields,
			}
		).insert(ignore_permissions=True)
		self.addCleanup(lambda: (frappe.delete_doc("Deployment", doc.name, force=True), frappe.db.commit()))
		return doc

	def test_user_without_the_roles_cannot_read_any_record(self):
		name = self.deployment().name
		frappe.set_user(user_with("dm-outsider@example.com", "Blogger"))
		for doctype in RECORDS:
			self.assertFalse(frappe.has_permission(doctype, "read"), doctype)
		with self.assertRaises(frappe.PermissionError):
			frappe.get_list("Deployment")
		with self.assertRaises(frappe.PermissionError):
			frappe.get_doc("Deployment", name).check_permission("read")

	def test_deploy_manager_role_reads_but_cannot_delete(self):
		self.assertTrue(frappe.db.exists("Role", "Deploy Manager"))
		name = self.deployment().name
		frappe.set_user(user_with("dm-operator@example.com", "Deploy Manager"))
		self.assertEqual(frappe.get_doc("Deployment", name).name, name)
		for doctype in RECORDS:
			self.assertTrue(frappe.has_permission(doctype, "read"), doctype)
		for doctype in ("Deployment", "Backup Record", "Verification Check"):
			for ptype in ("create", "write", "delete"):
				self.assertFalse(frappe.has_permission(doctype, ptype), f"{ptype} {doctype}")

	def test_recorded_history_cannot_be_edited_in_desk(self):
		frappe.set_user(user_with("dm-admin@example.com", "System Manager"))
		self.assertTrue(frappe.has_permission("Deployment", "delete"))
		for doctype in ("Deployment", "Backup Record", "Verification Check"):
			self.assertFalse(frappe.has_permission(doctype, "write"), doctype)
			self.assertFalse(frappe.has_permission(doctype, "create"), doctype)

	def test_name_and_duration(self):
		started = add_to_date(now_datetime(), minutes=-5)
		doc = self.deployment(started_at=started, finished_at=add_to_date(started, seconds=90))
		self.assertTrue(doc.name.startswith(f"DEP-{now_datetime().year}-"))
		self.assertEqual(doc.duration, 90)

	def test_changed_is_derived_from_apps_and_patches(self):
		doc = frappe.new_doc("Deployment")
		doc.source = "Manual"
		doc.set_apps(
			compare([AppState("shop", "1", "main", "a" * 40)], [AppState("shop", "1", "main", "a" * 40)])
		)
		doc.insert(ignore_permissions=True)
		self.assertFalse(doc.changed)
		doc.set_apps(
			compare([AppState("shop", "1", "main", "a" * 40)], [AppState("shop", "2", "main", "b" * 40)])
		)
		doc.save(ignore_permissions=True)
		self.assertTrue(doc.changed)

	def test_summary_is_plain_json(self):
		doc = self.deployment(touched_tables="tabItem\ntabUser")
		doc.set_apps(
			compare([AppState("shop", "1", "main", "a" * 40)], [AppState("shop", "2", "main", "b" * 40)])
		)
		doc.add_log("first line")
		doc.save(ignore_permissions=True)
		summary = frappe.parse_json(frappe.as_json(doc.summary()))
		self.assertEqual(summary["name"], doc.name)
		self.assertEqual(summary["touched_tables"], ["tabItem", "tabUser"])
		self.assertEqual(summary["apps"][0]["from_commit"], "a" * 40)
		self.assertIs(summary["apps"][0]["changed"], True)
		self.assertTrue(doc.log.endswith("first line"))

	def test_status_moves_only_as_the_lifecycle_allows(self):
		doc = self.deployment(status=lifecycle.IN_PROGRESS)
		with self.assertRaises(ValueError):
			doc.set_status(lifecycle.CONFIRMED)
		doc.finish("Test")
		self.assertEqual(doc.status, lifecycle.AWAITING_VERIFICATION)
		self.assertIn("Test finished in", doc.log)
		doc.save(ignore_permissions=True)
		doc.set_status(lifecycle.VERIFYING)
		doc.save(ignore_permissions=True)
		self.assertEqual(doc.judge("Consider rollback", "slower", window_over=False), lifecycle.MONITORING)
		doc.save(ignore_permissions=True)
		self.assertEqual(doc.judge("Confirm", "all good", window_over=True), lifecycle.CONFIRMED)
		doc.save(ignore_permissions=True)
		doc.mark_rolled_back(self.deployment(source="Rollback").name)
		doc.save(ignore_permissions=True)
		# A bare assignment is refused on save too: Rolled Back is where a deployment's story ends.
		doc.status = lifecycle.MONITORING
		with self.assertRaises(ValueError):
			doc.save(ignore_permissions=True)

	def test_a_failure_learnt_after_the_rollback_is_recorded_and_the_status_stays(self):
		doc = self.deployment()
		doc.mark_rolled_back(self.deployment(source="Rollback").name)
		doc.save(ignore_permissions=True)
		doc.fail("a later after_migrate hook raised")
		doc.save(ignore_permissions=True)
		self.assertEqual(
			(doc.status, doc.failure_reason), (lifecycle.ROLLED_BACK, "a later after_migrate hook raised")
		)
		self.assertIn("Found failed after it was rolled back", doc.log)
