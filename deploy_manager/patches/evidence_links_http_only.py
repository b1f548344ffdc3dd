import frappe

from deploy_manager.core import outbound


def execute():
	"""Evidence stored before links had to be http or https: a script URL (`javascript:`, `data:`)
	rendered as a link would run with the session of whoever opens it. The link goes; the reason
	says so."""
	for row in frappe.get_all(
		"Deploy Evidence", filters={"details_url": ("is", "set")}, fields=["name", "details_url", "reason"]
	):
		if why := outbound.link_refusal(row.details_url.strip()):
			note = f"Details URL removed by an update: {why}."
			frappe.db.set_value(
				"Deploy Evidence",
				row.name,
				{"details_url": "", "reason": f"{row.reason}\n{note}" if row.reason else note},
				update_modified=False,
			)
