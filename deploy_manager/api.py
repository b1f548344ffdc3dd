"""Whitelisted methods Desk calls. Each checks the caller's role and record permission first."""

import frappe
from frappe import _

from deploy_manager.services import monitoring

ROLES = ("System Manager", "Deploy Manager")


def require_role():
	# Not frappe.only_for: it lets everyone through while tests run, so no test could see it refuse.
	if set(ROLES).isdisjoint(frappe.get_roles()):
		raise frappe.PermissionError(_("Only a System Manager or a Deploy Manager may do this"))


@frappe.whitelist(methods=["POST"])
def verify_now(deployment: str | None = None) -> dict:
	"""Queue a verification of this site (of one deployment when named); the result is stored as a
	Verification Check and pushed to the caller when done. Never runs the suite in the request."""
	require_role()
	if deployment:
		frappe.get_doc("Deployment", deployment).check_permission("read")
	job = monitoring.enqueue_verification(deployment, frappe.session.user)
	if not job:
		return {"queued": False, "message": _("A verification of this site is already queued or running.")}
	return {
		"queued": True,
		"job_id": job.id,
		"message": _("Verification queued; the result shows here when done."),
	}
