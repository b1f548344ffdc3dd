"""What Desk shows beyond DocTypes: the workspace's custom blocks, kept as files in `deploy_manager/desk`
and written into their Custom HTML Block records on install and after every migrate (Frappe syncs the
workspace that names them, not the blocks)."""

from pathlib import Path

import frappe

FOLDER = Path(__file__).parent.parent / "desk"
# Custom HTML Block name -> file stem; each is shown to these roles only.
BLOCKS = {"Deploy Manager Watchdog": "watchdog_block"}
ROLES = ("System Manager", "Deploy Manager")


def sync_blocks():
	for name, stem in BLOCKS.items():
		doc = (
			frappe.get_doc("Custom HTML Block", name)
			if frappe.db.exists("Custom HTML Block", name)
			else frappe.new_doc("Custom HTML Block")
		)
		doc.update(
			{
				"html": (FOLDER / f"{stem}.html").read_text(),
				"script": (FOLDER / f"{stem}.js").read_text(),
				"style": (FOLDER / f"{stem}.css").read_text(),
				"private": 0,
			}
		)
		doc.set("roles", [{"role": role} for role in ROLES])
		if doc.is_new():
			doc.insert(ignore_permissions=True, set_name=name)
		else:
			doc.save(ignore_permissions=True)


def remove_blocks():
	"""Before the app is uninstalled: its blocks would call methods that are gone."""
	for name in BLOCKS:
		frappe.delete_doc("Custom HTML Block", name, ignore_permissions=True, ignore_missing=True, force=True)
