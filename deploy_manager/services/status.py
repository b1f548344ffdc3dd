"""Recent deployments for operators: one JSON shape per Deployment, and the same as a table."""

import frappe

from deploy_manager.core.formatting import age, describe_moves, table


def recent_deployments(limit: int = 10, changed_only: bool = False) -> list[dict]:
	filters = {"changed": 1} if changed_only else {}
	names = frappe.get_all("Deployment", filters=filters, order_by="creation desc", limit=limit, pluck="name")
	return [frappe.get_doc("Deployment", name).summary() for name in names]


def render_status(deployments: list[dict]) -> str:
	"""Plain text; runs after the sites are closed, so it reads only the summaries."""
	if not deployments:
		return "No deployments recorded yet."
	rows = [
		[
			d["name"],
			d["site"],
			d["status"],
			d["source"],
			describe_moves(d["apps"]),
			age(d["age_seconds"]) if d["age_seconds"] is not None else "-",
			_shorten(d["failure_reason"] or ""),
		]
		for d in deployments
	]
	return table(["Deployment", "Site", "Status", "Source", "Changes", "Age", "Failure"], rows)


def _shorten(text: str, width: int = 70) -> str:
	return text if len(text) <= width else text[: width - 3] + "..."
