"""`bench --site SITE deploy-manager ...`: parse arguments, open the site, call a service.

Imported on every bench call, so heavy imports stay inside the commands.
"""

import json
import sys
from contextlib import contextmanager

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


@deploy_manager.command("backup")
@click.option("--with-files", is_flag=True, help="Public and private files too, not only the database")
@click.option("--verify", "verify_name", metavar="NAME", help="Read Backup Record NAME's files again")
@click.option(
	"--drill", "drill_name", metavar="NAME", help="Restore NAME into a scratch database and compare"
)
@click.option(
	"--import",
	"import_path",
	is_flag=False,
	flag_value="",
	default=None,
	metavar="[PATH]",
	help="Record backups found in the site's backup folder (or PATH, inside the site)",
)
@click.option("--keep", is_flag=True, help="Show what retention keeps and deletes (with --yes: do it)")
@click.option("--yes", is_flag=True, help="With --keep: delete what no rollback point needs")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def backup(context, with_files, verify_name, drill_name, import_path, keep, yes, as_json):
	"""Take a verified backup (default), or verify, drill, import, or apply retention. Exit 0 when
	every backup named is Verified (and a drill passed), else 1."""
	from deploy_manager.services import backups

	if not context.sites or len(context.sites) > 1:
		raise click.UsageError("backup works on one site: --site SITE")
	frappe.init(site=context.sites[0])
	frappe.connect()
	try:
		if keep:
			decisions = backups.keep(apply=yes)
			frappe.db.commit()
			click.echo(json.dumps(decisions, indent=1) if as_json else _render_keep(decisions, yes))
			return
		if verify_name or drill_name:
			doc = frappe.get_doc("Backup Record", verify_name or drill_name)
			backups.drill(doc) if drill_name else backups.verify(doc)
			docs = [doc]
		elif import_path is not None:
			docs = backups.import_existing(import_path or None)
		else:
			docs = [backups.take("Manual", with_files=with_files)]
		frappe.db.commit()
		reports = [backups.report(doc) for doc in docs]
		click.echo(json.dumps({"backups": reports}, indent=1) if as_json else backups.render(reports))
		good = all(r["status"] == "Verified" for r in reports) and not (
			drill_name and reports[0]["drill"]["status"] != "Passed"
		)
		sys.exit(0 if good else 1)
	except (frappe.DoesNotExistError, ValueError) as e:
		raise click.ClickException(str(e)) from None
	finally:
		frappe.destroy()


@deploy_manager.command("candidates")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def candidates(context, as_json):
	"""Earlier states this site can roll back to: what each restores and what it would lose."""
	from deploy_manager.services import rollback

	with one_site(context):
		found = [rollback.describe(c) for c in rollback.candidates()]
	if as_json:
		click.echo(json.dumps({"candidates": found}, indent=1, default=str))
		return
	for c in found:
		state = "restorable" if c["restorable"] else "not restorable: " + "; ".join(c["problems"])
		click.echo(f"{c['name']}: {state}")
		click.echo(f"  database from {c['backup'] or '(no backup)'} taken {c['backup_taken_at']}")
		for app in c["apps"]:
			click.echo(f"  {app['app']}: {app['current'][:10]} -> {app['target'][:10]}")
		for table, rows in c["lost_since_backup"].items():
			click.echo(f"  would lose: {table} {rows:+d} rows since the backup")
	if not found:
		click.echo("No rollback candidates: no deployment with a pre-deploy backup yet.")


@deploy_manager.command("rollback")
@click.argument("candidate", required=False)
@click.option("--dry-run", is_flag=True, help="Print the plan only (the default without --yes)")
@click.option("--yes", is_flag=True, help="Carry the rollback out")
@click.option("--files", "with_files", is_flag=True, help="Restore public and private files too")
@click.option("--force", is_flag=True, help="Check out over uncommitted changes in the apps' working trees")
@click.option(
	"--accept-other-sites", is_flag=True, help="Roll back although other sites share this bench's code"
)
@click.option(
	"--fast", is_flag=True, help="Restore only the tables the deployment touched, where that is safe"
)
@pass_context
def rollback_command(context, candidate, dry_run, yes, with_files, force, accept_other_sites, fast):
	"""Return to CANDIDATE (default: the newest restorable one). Prints the plan; --yes carries it out."""
	from deploy_manager.services import rollback, steps

	with one_site(context):
		try:
			_say_reopened(steps.reopen_abandoned())
			chosen = rollback.find(candidate)
			click.echo(f"Rollback to {chosen.name} (undoes {chosen.deployment}):")
			click.echo(rollback.plan(chosen, with_files).text())
			tables = rollback.fast_path(chosen)
			if isinstance(tables, str):
				click.echo(f"Fast path not offered: {tables}")
			else:
				restore, drop = (", ".join(t) or "no table" for t in tables)
				click.echo(f"Fast path offered (--fast): restore {restore}; drop {drop}")
			others = rollback.other_sites()
			if others:
				click.echo(f"Other sites on this bench move with the code: {', '.join(others)}")
			if dry_run or not yes:
				click.echo("Dry run: nothing changed. Run with --yes to roll back.")
				return
			name = rollback.execute(chosen, with_files, force, accept_other_sites, fast)
		except (ValueError, RuntimeError) as e:
			raise click.ClickException(str(e)) from None
	click.echo(f"Rolled back: {name}; post-deploy verification queued.")


APP_HELP = (
	"APP or APP@REF (a branch, tag or commit); repeat for more apps. Default: every app's tracked branch"
)


@deploy_manager.command("preflight")
@click.option("--app", "apps", multiple=True, metavar="APP[@REF]", help=APP_HELP)
@click.option("--override", "override_reason", metavar="REASON", help="Record why blocks are overridden")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def preflight_command(context, apps, override_reason, as_json):
	"""The PREPARE checklist for a deploy of APPs, stored as a Preflight Verification Check. Exit 0
	when the deploy may go (no block, or blocks overridden with a reason), 1 when it is blocked."""
	from deploy_manager.services import deploy, preflight, steps

	with one_site(context):
		try:
			_say_reopened(steps.reopen_abandoned())
			moves, _refs = deploy.resolve(list(apps))
			decision, check = preflight.run(moves, override_reason or "")
			frappe.db.commit()
		except ValueError as e:
			raise click.ClickException(str(e)) from None
	report = preflight.as_dict(decision, check.name)
	click.echo(json.dumps(report, indent=1) if as_json else preflight.render(decision, check.name))
	sys.exit(0 if decision.go else 1)


@deploy_manager.command("deploy")
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
	1: blocked or failed, 2: deployed but the verification says roll back."""
	from deploy_manager.services import deploy, preflight

	if not context.sites:
		raise frappe.SiteNotSpecifiedError
	try:
		if len(context.sites) > 1:
			code = _deploy_bench(context.sites, list(apps), yes, override_reason or "", force, canary)
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
	from deploy_manager.services import deploy, steps

	with one_site(context):
		_say_reopened(steps.reopen_abandoned())
		if yes and (running := steps.running_change()):
			raise ValueError(f"{running} is running on this bench: one change at a time")
		moves, refs = deploy.resolve(apps)
		if all(move.current == move.target for move in moves):
			click.echo("Nothing to deploy: every app is at its target commit.")
			return 0
		_show_plan(moves, deploy.plan(moves, refs))
		if not yes:
			click.echo("Dry run: nothing changed. Run with --yes to deploy.")
			return 0
		name = deploy.execute(moves, refs, override_reason, force)
		click.echo(f"Deployed: {name}; verifying it now.")
		click.echo(f"{name}: {deploy.verify(name)}")
		return deploy.exit_code(name)


def _deploy_bench(
	sites: list[str], apps: list[str], yes: bool, override_reason: str, force: bool, canary
) -> int:
	from deploy_manager.services import deploy, steps

	if not yes:
		first = canary or sites[0]
		with steps.on_site(first):
			moves, refs = deploy.resolve(apps)
			_show_plan(moves, deploy.plan(moves, refs))
		click.echo(
			f"Sites, one at a time: {first} (the canary, verified first), then the others of {', '.join(sites)}"
		)
		click.echo("Dry run: nothing changed. Run with --yes to deploy.")
		return 0
	if running := steps.running_change():
		raise ValueError(f"{running} is running on this bench: one change at a time")
	record, lines, code = deploy.execute_bench(sites, apps, canary, override_reason, force)
	for line in lines:
		click.echo(line)
	click.echo(f"{record} (in {canary or sites[0]}'s records): {'stopped' if code else 'completed'}")
	return code


def _show_plan(moves, the_plan):
	for move in moves:
		click.echo(f"{move.app}: {move.current[:10]} -> {move.target[:10]}")
	click.echo(the_plan.text())


def _say_reopened(message: str | None):
	if message:
		click.secho(f"An earlier deploy or rollback was interrupted: {message}", fg="yellow", err=True)


@contextmanager
def one_site(context):
	if not context.sites or len(context.sites) > 1:
		raise click.UsageError("this command works on one site: --site SITE")
	frappe.init(site=context.sites[0])
	frappe.connect()
	try:
		yield
	finally:
		frappe.destroy()


def _render_keep(decisions: list[dict], applied: bool) -> str:
	verb = {"keep": "keep", "delete": "deleted" if applied else "would delete"}
	lines = [f"{d['name']}: {verb[d['action']]}: {d['reason']}" for d in decisions]
	if not applied and any(d["action"] == "delete" for d in decisions):
		lines.append("Dry run: nothing deleted. Run with --yes to delete.")
	return "\n".join(lines) or "No backups taken by Deploy Manager."


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
