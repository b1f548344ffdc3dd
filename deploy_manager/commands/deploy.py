"""Going forward: the preflight (PREPARE) and the deploy."""

import sys

import click
import frappe
from frappe.commands import pass_context

from deploy_manager.commands.sites import emit, one_site, say_reopened, sites_of

APP_HELP = (
	"APP or APP@REF (a branch, tag or commit); repeat for more apps. Default: every app's tracked branch"
)


@click.command("preflight")
@click.option("--app", "apps", multiple=True, metavar="APP[@REF]", help=APP_HELP)
@click.option("--override", "override_reason", metavar="REASON", help="Record why blocks are overridden")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def preflight_command(context, apps, override_reason, as_json):
	"""The PREPARE checklist for a deploy of APPs, stored as a Preflight Verification Check. Exit 0
	when the deploy may go (no block, or blocks overridden with a reason), 1 when it is blocked."""
	from deploy_manager.services import closing, deploy, preflight

	with one_site(context):
		try:
			say_reopened(closing.reopen_abandoned())
			moves, _refs = deploy.resolve(list(apps))
			decision, check = preflight.run(moves, override_reason or "")
			frappe.db.commit()
		except ValueError as e:
			raise click.ClickException(str(e)) from None
	emit(preflight.as_dict(decision, check.name), as_json, lambda: preflight.render(decision, check.name))
	sys.exit(0 if decision.go else 1)


@click.command("deploy")
@click.option("--app", "apps", multiple=True, metavar="APP[@REF]", help=APP_HELP)
@click.option("--yes", is_flag=True, help="Carry the deploy out (without it: print the plan)")
@click.option(
	"--override", "override_reason", metavar="REASON", help="Deploy despite preflight blocks, for this reason"
)
@click.option("--force", is_flag=True, help="Check out over uncommitted changes in the apps' working trees")
@click.option("--canary", metavar="SITE", help="With --site all: the site deployed and verified first")
@pass_context
def deploy_command(context, apps, yes, override_reason, force, canary):
	"""Preflight, verified backup, maintenance, check out, requirements, migrate, build, clear cache,
	restart, post-deploy verification. With --site all the code moves once and the sites migrate one
	at a time, the canary first. Exit 0: deployed and verified (or waiting for the site to be open),
	1: blocked or failed, 2: deployed but the verification says roll back, 4: deployed, not verified
	(nothing restarted the bench)."""
	from deploy_manager.services import deploy, preflight

	sites = sites_of(context)
	try:
		if len(sites) > 1:
			code = _deploy_bench(sites, list(apps), yes, override_reason or "", force, canary)
		else:
			code = _deploy_site(context, list(apps), yes, override_reason or "", force)
	except deploy.Blocked as e:
		click.echo(preflight.render(e.decision, e.check), err=True)
		raise click.ClickException(
			"the preflight blocks this deploy: fix the items, or --override REASON"
		) from None
	except (ValueError, RuntimeError) as e:
		raise click.ClickException(str(e)) from None
	sys.exit(code)


def _deploy_site(context, apps: list[str], yes: bool, override_reason: str, force: bool) -> int:
	from deploy_manager.services import bench_lock, closing, deploy

	with one_site(context):
		say_reopened(closing.reopen_abandoned())
		if yes and (running := bench_lock.running_change()):
			raise ValueError(f"{running} is running on this bench: one change at a time")
		moves, refs = deploy.resolve(apps)
		if all(move.current == move.target for move in moves):
			click.echo("Nothing to deploy: every app is at its target commit.")
			return 0
		_show_plan(moves, deploy.plan(moves, refs))
		if not yes:
			click.echo("Dry run: nothing changed. Run with --yes to deploy.")
			return 0
		name, restarted = deploy.execute(moves, refs, override_reason, force)
		if not restarted:
			click.echo(
				f"Deployed: {name}, not verified: the old code answers until the bench's web server and"
				f" workers restart (see the log). Once they have, the five-minute sweep verifies {name}.",
				err=True,
			)
			return deploy.NOT_VERIFIED
		click.echo(f"Deployed: {name}; verifying it now.")
		click.echo(f"{name}: {deploy.verify(name)}")
		return deploy.exit_code(name)


def _deploy_bench(
	sites: list[str], apps: list[str], yes: bool, override_reason: str, force: bool, canary
) -> int:
	from deploy_manager.services import bench_lock, deploy
	from deploy_manager.services.site_state import on_site

	if not yes:
		first = canary or sites[0]
		with on_site(first):
			moves, refs = deploy.resolve(apps)
			_show_plan(moves, deploy.plan(moves, refs))
		click.echo(
			f"Sites, one at a time: {first} (the canary, verified first), then the others of {', '.join(sites)}"
		)
		click.echo("Dry run: nothing changed. Run with --yes to deploy.")
		return 0
	if running := bench_lock.running_change():
		raise ValueError(f"{running} is running on this bench: one change at a time")
	record, lines, code = deploy.execute_bench(sites, apps, canary, override_reason, force)
	for line in lines:
		click.echo(line)
	click.echo(f"{record} (in {canary or sites[0]}'s records): {'stopped' if code else 'completed'}")
	return code


def _show_plan(moves, the_plan):
	from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
		get_settings,
	)

	settings = get_settings()
	# What the preflight's rules and the verdicts will go by (empty Settings: detected, not assumed).
	click.echo(
		f"{frappe.local.site}: {settings.default_environment} environment, {settings.platform} platform"
	)
	for move in moves:
		click.echo(f"{move.app}: {move.current[:10]} -> {move.target[:10]}")
	click.echo(the_plan.text())
