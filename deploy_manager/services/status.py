"""Recent deployments for operators: one JSON shape per Deployment, and the same as a table."""

import frappe
from frappe.utils import now_datetime, time_diff_in_seconds

from deploy_manager.core.formatting import age, short_commit, table


def recent_deployments(limit: int = 10, changed_only: bool = False) -> list[dict]:
	filters = {"changed": 1} if changed_only else {}
	names = frappe.get_all("Deployment", filters=filters, order_by="creation desc", limit=limit, pluck="name")
	return [frappe.get_doc("Deployment", name).summary() for name in names]


def render_status(deployments: list[dict]) -> str:
	if not deployments:
		return "No deployments recorded yet."
	now = now_datetime()
	rows = [
		[
			d["name"],
			d["site"],
			d["status"],
			d["source"],
			_changes(d),
			age(time_diff_in_seconds(now, d["started_at"])) if d["started_at"] else "-",
		]
		for d in deployments
	]
	return table(["Deployment", "Site", "Status", "Source", "Changes", "Age"], rows)


def _changes(deployment: dict) -> str:
	moved = [
		f"{a['app']} {short_commit(a['from_commit'])}..{short_commit(a['to_commit'])}"
		for a in deployment["apps"]
		if a["changed"]
	]
	if moved:
		return ", ".join(moved)
	if deployment["status"] in ("In Progress", "Failed"):
		return deployment.get("failure_reason") or "-"
	return "no change"
