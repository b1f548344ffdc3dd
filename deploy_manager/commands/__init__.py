"""`bench --site SITE deploy-manager ...`: parse arguments, open the site, call a service.

Imported on every bench call, so heavy imports stay inside the commands.
"""

import json
import sys

import click
import frappe
from frappe.commands import pass_context


@click.group("deploy-manager")
def deploy_manager():
	"""Deployments of this site: record, back up, verify, roll back."""


@deploy_manager.command("status")
@click.option(
	"--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Deployments per site"
)
@click.option("--changed", is_flag=True, help="Leave out migrates that changed nothing")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def status(context, limit, changed, as_json):
	"""Recent deployments: status, source, apps that moved and from which commit to which."""
	from deploy_manager.services.status import recent_deployments, render_status

	if not context.sites:
		raise frappe.SiteNotSpecifiedError
	deployments, problems = [], []
	for site, result in each_site(context, recent_deployments, limit=limit, changed_only=changed):
		if isinstance(result, Exception):
			problems.append({"site": site, "error": str(result)})
		elif result is not None:
			deployments.extend(result)
	if as_json:
		click.echo(json.dumps({"deployments": deployments, "errors": problems}, indent=1, default=str))
	else:
		if deployments or not problems:
			click.echo(render_status(deployments))
		for problem in problems:
			click.secho(f"{problem['site']}: {problem['error']}", fg="red", err=True)
	sys.exit(1 if problems else 0)


@deploy_manager.command("verify")
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
	"""Check the site now and say what to do. Exit 0: Confirm or Fix forward, 1: Consider rollback,
	2: Rollback or Rollback immediately."""
	from deploy_manager.services.verification import render_report, verify_sites

	if not context.sites:
		raise frappe.SiteNotSpecifiedError
	report, exit_code = verify_sites(context.sites, phase, deployment)
	click.echo(json.dumps(report, indent=1, default=str) if as_json else render_report(report))
	sys.exit(exit_code)


def each_site(context, fn, **kwargs):
	"""Yield (site, result) for each site of `--site`.

	A failure is yielded as its exception. With several sites, one without deploy_manager is
	skipped with a note on stderr (result None); named alone, it is an error.
	"""
	for site in context.sites:
		try:
			frappe.init(site=site)
			frappe.connect()
			if "deploy_manager" in frappe.get_installed_apps():
				yield site, fn(**kwargs)
			elif len(context.sites) > 1:
				click.echo(f"{site}: deploy_manager is not installed, skipped", err=True)
				yield site, None
			else:
				yield site, click.ClickException("deploy_manager is not installed on this site")
		except Exception as e:
			yield site, e
		finally:
			frappe.destroy()


commands = [deploy_manager]
