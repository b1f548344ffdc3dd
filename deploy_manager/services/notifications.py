"""Tell people when a deployment should be rolled back: an email to the site's deploy managers and,
when configured, a Slack-compatible webhook. Once per deployment and verdict, not on every re-check.
The watchdog's alerts go the same ways, sent from its own process.
"""

import frappe
import requests
from frappe import _
from frappe.utils import get_url_to_form
from urllib3.util import Retry

from deploy_manager.core import outbound
from deploy_manager.core.formatting import describe_moves
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_secret,
	get_settings,
)

ROLES = ("Deploy Manager", "System Manager")
WEBHOOK_TIMEOUT = 5
WEBHOOK_RETRIES = 3


def rollback_recommended(doc):
	"""Called with a Deployment just moved to Rollback Recommended, before it is saved."""
	if doc.notified_verdict == doc.verdict:
		return
	doc.notified_verdict = doc.verdict
	config = get_settings()
	subject = _("Rollback recommended: {0} on {1} ({2})").format(doc.name, frappe.local.site, doc.verdict)
	text = "\n".join(
		[
			subject,
			_("Why: {0}").format(doc.verdict_reason),
			_("Changed: {0}").format(describe_moves(doc.apps)),
			get_url_to_form("Deployment", doc.name),
		]
	)
	recipients = recipients_of_rollback_alerts() if config.notify_by_email else []
	emailed = bool(recipients) and _email(recipients, subject, text, ("Deployment", doc.name))
	if config.webhook_url:
		frappe.enqueue(
			"deploy_manager.services.notifications.post_webhook",
			queue="short",
			enqueue_after_commit=True,
			deployment=doc.name,
			text=text,
		)
	doc.add_log(
		f"Rollback alert: {'emailed to ' + ', '.join(recipients) if emailed else 'no email sent'}"
		f"{'; webhook queued' if config.webhook_url else ''}"
	)


def _email(
	recipients: list[str], subject: str, text: str, reference: tuple[str, str | None], now: bool = False
) -> bool:
	"""Queue the alert email (`now`: then send it from this process, for when no worker may run); True
	once it is queued. A site without an outgoing email account must still get its verdict: the
	failure is logged, the verdict kept."""
	frappe.db.savepoint("deploy_manager_alert")
	try:
		queued = frappe.sendmail(
			recipients=recipients,
			subject=subject,
			message=frappe.utils.escape_html(text).replace("\n", "<br>"),
			reference_doctype=reference[0],
			reference_name=reference[1],
		)
	except Exception:
		frappe.db.rollback(save_point="deploy_manager_alert")
		frappe.log_error(title="deploy_manager: alert could not be emailed")
		return False
	if now and queued:
		frappe.db.commit()  # sending commits the queue row's status itself
		try:
			queued.send()
		except Exception:
			# Queued all the same: the workers send it once they and the mail server can. Not queued
			# again by the next run, which would send it twice then.
			frappe.db.rollback()
			frappe.log_error(title="deploy_manager: alert could not be emailed now (left in the Email Queue)")
			frappe.db.commit()
	return True


def recipients_of_rollback_alerts() -> list[str]:
	users = frappe.get_all(
		"Has Role",
		filters={
			"role": ("in", ROLES),
			"parenttype": "User",
			"parent": ("not in", ("Administrator", "Guest")),
		},
		pluck="parent",
		distinct=True,
	)
	if not users:
		return []
	return frappe.get_all(
		"User",
		filters={"name": ("in", users), "enabled": 1, "user_type": "System User"},
		pluck="email",
		order_by="email",
	)


def post_webhook(deployment: str, text: str):
	"""A background job: POST {"text": ...} as Slack's incoming webhooks take it. The URL is a secret
	(it holds the token), so neither it nor a requests error, which would quote it, is logged."""
	if failure := _post_webhook(text):
		frappe.log_error(
			title="deploy_manager: rollback webhook failed",
			message=f"Deployment {deployment}: the webhook did not take the alert ({failure}).",
		)


def _post_webhook(text: str) -> str:
	"""POST {"text": ...} to the webhook of Settings; "" when it took it (or none is set), else why not,
	without the URL."""
	url = get_secret("webhook_url")
	if not url:
		return ""
	with _retrying_session() as session:
		try:
			response = session.post(url, json={"text": text}, timeout=WEBHOOK_TIMEOUT)
			return "" if response.ok else f"HTTP {response.status_code}"
		except requests.RequestException as e:
			return type(e).__name__


def watchdog_alert(opened: list[str], cleared: list[str], check: str | None) -> str:
	"""Sent by the watchdog process itself, not queued: it alerts when no worker runs. The webhook
	posted and the email sent now. Returns "" when one way took it (or none is configured), else why
	neither did, for the next run to try again."""
	subject = _("Watchdog on {0}: {1}").format(
		frappe.local.site,
		_("{0} new, {1} cleared").format(len(opened), len(cleared))
		if cleared
		else _("{0} new").format(len(opened)),
	)
	text = "\n".join(
		[subject]
		+ [_("New: {0}").format(finding) for finding in opened]
		+ [_("Cleared: {0}").format(finding) for finding in cleared]
		+ ([get_url_to_form("Verification Check", check)] if check else [])
	)
	ways, failures, config = 0, [], get_settings()
	if config.webhook_url:
		ways += 1
		if failure := _post_webhook(text):
			failures.append(f"webhook: {failure}")
	if config.notify_by_email and (recipients := recipients_of_rollback_alerts()):
		ways += 1
		if not _email(recipients, subject, text, ("Verification Check", check), now=True):
			failures.append("email: not queued (see Error Log)")
	return "; ".join(failures) if ways and len(failures) == ways else ""


def _retrying_session() -> requests.Session:
	"""For posts to another service: a refused connection, 429 or 5xx is tried again, with backoff.
	Its own backoff, not the service's Retry-After: a service asking for an hour would hold the worker
	that long. Never to link-local or metadata addresses (`core.outbound`)."""
	retries = Retry(
		total=WEBHOOK_RETRIES,
		backoff_factor=0.5,
		status_forcelist=(429, 500, 502, 503, 504),
		allowed_methods=None,
		respect_retry_after_header=False,
	)
	return outbound.session(max_retries=retries)


def confirmed(doc):
	"""Called with a Deployment just Confirmed. On a Staging site with a Production site set in
	Settings, tell it which commits were Confirmed here: its preflight's "Staging first" reads them."""
	config = get_settings()
	if config.default_environment != "Staging" or not config.production_url:
		return
	moved = [{"app": row.app, "commit": row.to_commit} for row in doc.apps if row.changed and row.to_commit]
	if moved:
		frappe.enqueue(
			"deploy_manager.services.notifications.post_confirmation",
			queue="short",
			enqueue_after_commit=True,
			deployment=doc.name,
			moved=moved,
		)
		doc.add_log(f"Confirmation for {len(moved)} apps queued for the Production site")


def post_confirmation(deployment: str, moved: list[dict]):
	"""A background job: one Staging Confirmed evidence per app, posted with the API key Settings hold."""
	config = get_settings()
	secret = get_secret("production_api_secret")
	failures = []
	with _retrying_session() as session:
		for row in moved:
			try:
				response = session.post(
					config.production_url.rstrip("/") + "/api/method/deploy_manager.api.post_evidence",
					data={**row, "kind": "Staging Confirmed", "result": "Passed", "site": frappe.local.site},
					headers={"Authorization": f"token {config.production_api_key}:{secret}"},
					timeout=WEBHOOK_TIMEOUT,
				)
				if not response.ok:
					failures.append(f"{row['app']}: HTTP {response.status_code}")
			except requests.RequestException as e:
				failures.append(f"{row['app']}: {type(e).__name__}")
	doc = frappe.get_doc("Deployment", deployment)
	doc.add_log(
		f"Production site told of the Confirmed commits{': failed for ' + '; '.join(failures) if failures else ''}"
	)
	doc.save(ignore_permissions=True)
