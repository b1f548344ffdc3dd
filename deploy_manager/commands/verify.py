"""What happened and how the site is now: `status` and `verify`."""

import sys

import click
import frappe
from frappe.commands import pass_context

from deploy_manager.commands.sites import each_site, emit, say_reopened, sites_of


@click.command("status")
@click.option(
	"--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Deployments per site"
)
@click.option("--changed", is_flag=True, help="Leave out migrates that changed nothing")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def status(context, limit, changed, as_json):
	"""Recent deployments: status, source, apps that moved and from which commit to which."""
	from deploy_manager.services.status import render_status

	deployments, problems = [], []
	for site, result in each_site(context, _status_of_site, limit=limit, changed_only=changed):
		if isinstance(result, Exception):
			problems.append({"site": site, "error": str(result)})
		elif result is not None:
			deployments.extend(result)
	if as_json or deployments or not problems:
		emit({"deployments": deployments, "errors": problems}, as_json, lambda: render_status(deployments))
	if not as_json:
		for problem in problems:
			click.secho(f"{problem['site']}: {problem['error']}", fg="red", err=True)
	sys.exit(1 if problems else 0)


def _status_of_site(limit: int, changed_only: bool) -> list[dict]:
	from deploy_manager.services import closing
	from deploy_manager.services.status import recent_deployments

	# What an interrupted deploy or rollback left is settled first: its records may be kept aside.
	if reopened := closing.reopen_abandoned():
		say_reopened(f"{frappe.local.site}: {reopened}")
	return recent_deployments(limit=limit, changed_only=changed_only)


@click.command("verify")
@click.option(
	"--phase",
	type=click.Choice(["pre", "post", "scheduled", "manual"]),
	default="manual",
	show_default=True,
	help="pre records the baseline a later deployment is compared with",
)
@click.option("--deployment", help="Deployment this verification belongs to")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def verify(context, phase, deployment, as_json):
	"""Check the site now and say what to do. Exit 0: Confirm or Fix forward, 1: Consider rollback
	(or still Inconclusive), 2: Rollback or Rollback immediately, 3: a site could not be verified. A
	transient failure (scheduler, workers, queues, response times) is checked again before it counts."""
	from deploy_manager.services.verification import render_report, verify_sites

	report, exit_code = verify_sites(
		sites_of(context), phase, deployment, say=lambda line: click.echo(line, err=True)
	)
	emit(report, as_json, lambda: render_report(report))
	sys.exit(exit_code)
