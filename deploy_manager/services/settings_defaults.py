"""Deploy Manager Settings fields added by an upgrade hold no value, and Frappe sets defaults only for
a new single: after every migrate, each field without a stored value gets its default (an unset
"Email Deploy Managers" would silence rollback alerts, an unset pre-deploy backup would skip it)."""

import frappe

SETTINGS = "Deploy Manager Settings"


def fill():
	stored = set(frappe.db.sql("select field from tabSingles where doctype = %s", SETTINGS, pluck=True))
	for field in frappe.get_meta(SETTINGS).fields:
		if field.default and field.fieldname not in stored:
			frappe.db.set_single_value(SETTINGS, field.fieldname, field.default)
