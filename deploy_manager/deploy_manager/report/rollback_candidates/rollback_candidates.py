# Copyright (c) 2026, deploy_manager developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _

from deploy_manager.services import rollback


def execute(filters: dict | None = None):
	"""Earlier states the site can go back to: what each restores and what it would lose. Read-only:
	the rollback itself runs from the shell (`deploy-manager rollback`), never from a web request."""
	filters = frappe._dict(filters or {})
	rows = []
	for candidate in rollback.candidates():
		if filters.restorable_only and not candidate.restorable:
			continue
		described = rollback.describe(candidate)
		rows.append(
			{
				"candidate": described["name"],
				"deployment": described["deployment"],
				"restorable": int(described["restorable"]),
				"backup": described["backup"],
				"backup_taken_at": described["backup_taken_at"],
				"apps": ", ".join(
					f"{a['app']} {a['current'][:10]} -> {a['target'][:10]}" for a in described["apps"]
				),
				"lost": ", ".join(f"{t} {n:+d}" for t, n in described["lost_since_backup"].items()),
				"problems": "; ".join(described["problems"]),
				"command": f"bench --site {frappe.local.site} deploy-manager rollback {described['name']}",
			}
		)
	return COLUMNS, rows


COLUMNS = [
	{"fieldname": "candidate", "label": _("Candidate"), "fieldtype": "Data", "width": 200},
	{
		"fieldname": "deployment",
		"label": _("Undoes"),
		"fieldtype": "Link",
		"options": "Deployment",
		"width": 150,
	},
	{"fieldname": "restorable", "label": _("Restorable"), "fieldtype": "Check", "width": 90},
	{
		"fieldname": "backup",
		"label": _("Database From"),
		"fieldtype": "Link",
		"options": "Backup Record",
		"width": 150,
	},
	{"fieldname": "backup_taken_at", "label": _("Backup Taken"), "fieldtype": "Datetime", "width": 160},
	{"fieldname": "apps", "label": _("Apps (now -> then)"), "fieldtype": "Data", "width": 260},
	{"fieldname": "lost", "label": _("Rows Changed Since"), "fieldtype": "Data", "width": 220},
	{"fieldname": "problems", "label": _("Why Not Restorable"), "fieldtype": "Data", "width": 260},
	{"fieldname": "command", "label": _("Command"), "fieldtype": "Data", "width": 380},
]
