"""Backups: take, verify, drill, import and keep them."""

import sys

import click
import frappe
from frappe.commands import pass_context

from deploy_manager.commands.sites import emit, one_site


@click.command("backup")
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

	with one_site(context):
		try:
			if keep:
				decisions = backups.keep(apply=yes)
				frappe.db.commit()
				emit(decisions, as_json, lambda: _render_keep(decisions, yes))
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
		except (frappe.DoesNotExistError, ValueError) as e:
			raise click.ClickException(str(e)) from None
		reports = [backups.report(doc) for doc in docs]
		emit({"backups": reports}, as_json, lambda: backups.render(reports))
	good = all(r["status"] == "Verified" for r in reports) and not (
		drill_name and reports[0]["drill"]["status"] != "Passed"
	)
	sys.exit(0 if good else 1)


def _render_keep(decisions: list[dict], applied: bool) -> str:
	verb = {"keep": "keep", "delete": "deleted" if applied else "would delete"}
	lines = [f"{d['name']}: {verb[d['action']]}: {d['reason']}" for d in decisions]
	if not applied and any(d["action"] == "delete" for d in decisions):
		lines.append("Dry run: nothing deleted. Run with --yes to delete.")
	return "\n".join(lines) or "No backups taken by Deploy Manager."
