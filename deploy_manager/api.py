"""Whitelisted methods Desk calls. Each checks the caller's role and record permission first."""

import base64
import binascii
import hmac

import frappe
from frappe import _
from frappe.utils.password import get_decrypted_password

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


@frappe.whitelist(methods=["POST"])
def backup_now(with_files: bool = False) -> dict:
	"""Queue a full, verified backup on the long queue; the record is pushed to the caller when done."""
	require_role()
	frappe.has_permission("Backup Record", "read", throw=True)
	job = frappe.enqueue(
		"deploy_manager.services.backups.take_on_request",
		queue="long",
		job_id="deploy_manager:backup_now",
		deduplicate=True,
		with_files=frappe.utils.cint(with_files),
		user=frappe.session.user,
	)
	if not job:
		return {"queued": False, "message": _("A backup of this site is already being taken.")}
	return {"queued": True, "message": _("Backup queued; the record shows here when it is verified.")}


@frappe.whitelist(methods=["POST"])
def check_backup(name: str, drill: bool = False) -> dict:
	"""Queue a verification of Backup Record `name`, or a restore drill of it, on the long queue."""
	require_role()
	frappe.get_doc("Backup Record", name).check_permission("read")
	job = frappe.enqueue(
		"deploy_manager.services.backups.check_on_request",
		queue="long",
		job_id=f"deploy_manager:check_backup:{name}",
		deduplicate=True,
		name=name,
		restore_drill=frappe.utils.cint(drill),
		user=frappe.session.user,
	)
	if not job:
		return {"queued": False, "message": _("{0} is already being checked.").format(name)}
	return {"queued": True, "message": _("Queued; the result shows here when done.")}


@frappe.whitelist()
def rollback_plan(deployment: str) -> dict:
	"""The rollback that would undo `deployment`: its candidate and the exact steps for this bench's
	platform, with the command that runs them. Shows only: Desk never rolls back."""
	from deploy_manager.services import rollback

	require_role()
	frappe.get_doc("Deployment", deployment).check_permission("read")
	candidate = rollback.find(deployment)
	return {
		**rollback.describe(candidate),
		"plan": rollback.plan(candidate).text(),
		"command": f"bench --site {frappe.local.site} deploy-manager rollback {candidate.name} --yes",
	}


@frappe.whitelist(methods=["GET"])
def watchdog_status() -> dict:
	"""What the workspace shows of the watchdog: its schedule and this site's last run."""
	from deploy_manager.services import watchdog

	require_role()
	return watchdog.site_status()


@frappe.whitelist(methods=["POST"])
def post_evidence(
	app: str,
	commit: str,
	kind: str,
	result: str = "Passed",
	details_url: str | None = None,
	site: str | None = None,
) -> dict:
	"""For pipelines and Staging sites: evidence about one commit of one app (kind Tests, Lint,
	Review, Build or Staging Confirmed; result Passed or Failed), read by the preflight. Only with an
	API key and secret, never a session cookie: a browser session must not vouch for a pipeline."""
	require_api_key()
	require_role()
	doc = frappe.get_doc(
		{
			"doctype": "Deploy Evidence",
			"app": app,
			"commit": commit,
			"kind": kind,
			"result": result,
			"details_url": details_url,
			"reported_by_site": site,
			"source": "API",
		}
	)
	doc.flags.posted_through_api = True
	doc.insert()
	return {"name": doc.name}


def require_api_key():
	"""The request carries `Authorization: token KEY:SECRET` (or Basic) whose secret is this user's,
	it runs as that user, and it brings no logged-in session (cookie or form field). Checked here,
	not left to Frappe: its own check skips some malformed headers and then a session decides."""
	scheme, _sep, credentials = (frappe.get_request_header("Authorization") or "").strip().partition(" ")
	if scheme.lower() == "basic":
		try:
			credentials = base64.b64decode(credentials, validate=True).decode()
		except (binascii.Error, UnicodeDecodeError):
			credentials = ""
	elif scheme.lower() != "token":
		credentials = ""
	key, _sep, secret = credentials.partition(":")
	user = frappe.db.get_value("User", {"api_key": key}, "name") if key and secret else None
	stored = get_decrypted_password("User", user, "api_secret", raise_exception=False) if user else None
	session = (frappe.request.cookies.get("sid") if frappe.request else None) or frappe.form_dict.get("sid")
	if (
		not stored
		or not hmac.compare_digest(stored, secret)
		or user != frappe.session.user
		or session not in (None, "", "Guest")
	):
		raise frappe.PermissionError(_("Post evidence with an API key and secret, not a session"))
