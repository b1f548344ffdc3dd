"""Settings fields added after install hold no value, and Frappe sets defaults only for a new single:
give the new ones theirs (an unset "Email Deploy Managers" would silence rollback alerts)."""

import frappe

SETTINGS = "Deploy Manager Settings"


def execute():
	stored = set(frappe.db.sql("select field from tabSingles where doctype = %s", SETTINGS, pluck=True))
	for field in frappe.get_meta(SETTINGS).fields:
		if field.default and field.fieldname not in stored:
			frappe.db.set_single_value(SETTINGS, field.fieldname, field.default)
