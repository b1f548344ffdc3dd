"""Going back: the candidates, and the rollback to one of them."""

import click
from frappe.commands import pass_context

from deploy_manager.commands.sites import emit, one_site, say_reopened


@click.command("candidates")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
@pass_context
def candidates(context, as_json):
	"""Earlier states this site can roll back to: what each restores and what it would lose."""
	from deploy_manager.services import rollback

	with one_site(context):
		found = [rollback.describe(c) for c in rollback.candidates()]
	emit({"candidates": found}, as_json, lambda: _render_candidates(found))


def _render_candidates(found: list[dict]) -> str:
	if not found:
		return "No rollback candidates: no deployment with a pre-deploy backup yet."
	lines = []
	for c in found:
		state = "restorable" if c["restorable"] else "not restorable: " + "; ".join(c["problems"])
		lines.append(f"{c['name']}: {state}")
		lines.append(f"  database from {c['backup'] or '(no backup)'} taken {c['backup_taken_at']}")
		lines += [f"  {app['app']}: {app['current'][:10]} -> {app['target'][:10]}" for app in c["apps"]]
		lines += [
			f"  would lose: {table} {rows:+d} rows since the backup"
			for table, rows in c["lost_since_backup"].items()
		]
	return "\n".join(lines)


@click.command("rollback")
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
	from deploy_manager.services import closing, rollback

	with one_site(context):
		try:
			say_reopened(closing.reopen_abandoned())
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
