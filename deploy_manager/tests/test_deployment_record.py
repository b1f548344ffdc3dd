# Copyright (c) 2026, deploy_manager developers and Contributors
# See license.txt

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from deploy_manager.core.deployments import AppState, compare

RECORDS = ("Deployment", "Backup Record", "Verification Check", "Deploy Manager Settings")


def create_test_deployment(**fields):
	doc = frappe.get_doc({"doctype": "Deployment", "source": "Manual", "site": frappe.local.site, **fields})
	return doc.insert(ignore_permissions=True)


def create_user(email: str, roles: list[str]):
	if not frappe.db.exists("User", email):
		user = frappe.get_doc(
			{"doctype": "User", "email": email, "first_name": email.split("@")[0], "send_welcome_email": 0}
		).insert(ignore_permissions=True)
	else:
		user = frappe.get_doc("User", email)
	user.set("roles", [{"role": role} for role in roles])
	user.save(ignore_permissions=True)
	return email


class TestDeployment(FrappeTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")

	def test_user_without_the_roles_cannot_read_any_record(self):
		name = create_test_deployment().name
		frappe.set_user(create_user("dm-outsider@example.com", ["Blogger"]))
		for doctype in RECORDS:
			self.assertFalse(frappe.has_permission(doctype, "read"), doctype)
		with self.assertRaises(frappe.PermissionError):
			frappe.get_list("Deployment")
		with self.assertRaises(frappe.PermissionError):
			frappe.get_doc("Deployment", name).check_permission("read")

	def test_deploy_manager_role_reads_but_cannot_delete(self):
		self.assertTrue(frappe.db.exists("Role", "Deploy Manager"))
		name = create_test_deployment().name
		frappe.set_user(create_user("dm-operator@example.com", ["Deploy Manager"]))
		self.assertEqual(frappe.get_doc("Deployment", name).name, name)
		for doctype in RECORDS:
			self.assertTrue(frappe.has_permission(doctype, "read"), doctype)
		for doctype in ("Deployment", "Backup Record", "Verification Check"):
			for ptype in ("create", "write", "delete"):
				self.assertFalse(frappe.has_permission(doctype, ptype), f"{ptype} {doctype}")

	def test_recorded_history_cannot_be_edited_in_desk(self):
		frappe.set_user(create_user("dm-admin@example.com", ["System Manager"]))
		self.assertTrue(frappe.has_permission("Deployment", "delete"))
		for doctype in ("Deployment", "Backup Record", "Verification Check"):
			self.assertFalse(frappe.has_permission(doctype, "write"), doctype)
			self.assertFalse(frappe.has_permission(doctype, "create"), doctype)

	def test_name_and_duration(self):
		started = add_to_date(now_datetime(), minutes=-5)
		doc = create_test_deployment(started_at=started, finished_at=add_to_date(started, seconds=90))
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
		doc = create_test_deployment(touched_tables="tabItem\ntabUser")
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
