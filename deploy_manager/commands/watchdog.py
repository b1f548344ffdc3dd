"""`bench deploy-manager watchdog ...`: the watchdog's cron entry and its runs, for the whole bench."""

import sys

import click

from deploy_manager.commands.sites import emit


@click.group("watchdog")
def watchdog():
	"""Watch every site of this bench from cron, outside the sites' own scheduler and workers."""


@watchdog.command("enable")
@click.option(
	"--every", default=5, show_default=True, type=click.IntRange(1, 59), help="Minutes between runs"
)
def enable(every):
	"""Write (or update) this bench's one entry in the bench user's crontab."""
	from deploy_manager.services import watchdog as service

	entry = _bench(lambda: service.enable(every))
	click.echo(f"Watchdog enabled in the crontab of the bench's user:\n{entry.line()}")


@watchdog.command("disable")
def disable():
	"""Remove this bench's entry from the crontab (and nothing else)."""
	from deploy_manager.services import watchdog as service

	removed = _bench(service.disable)
	click.echo("Watchdog disabled: its crontab entry removed." if removed else "Watchdog was not enabled.")


@watchdog.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
def status(as_json):
	"""The crontab entry, and each site's last run and what it found."""
	from deploy_manager.services import watchdog as service

	found = _bench(service.status)
	emit(found, as_json, lambda: _render_status(found))


@watchdog.command("run")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
def run(as_json):
	"""Watch every site once (what cron runs): repair what a dead deploy or rollback left, note what
	needs a person. Exit 1 when something was noticed that is still there."""
	from deploy_manager.services import watchdog as service

	found = _bench(service.run)
	emit(found, as_json, lambda: _render_run(found))
	sys.exit(1 if any(f["status"] == service.NOTICED for r in found.values() for f in r["findings"]) else 0)


def _bench(fn):
	"""`fn` run from the bench's sites folder, where bench runs its commands."""
	import frappe

	frappe.init(site="")
	try:
		return fn()
	except ValueError as e:
		raise click.ClickException(str(e)) from None
	finally:
		frappe.destroy()


def _render_run(found: dict) -> str:
	lines = []
	for site, result in found.items():
		lines += [f"{site}: {f['status']}: {f['finding']}" for f in result["findings"]]
	return "\n".join(lines) or "No site with deploy_manager on this bench."


def _render_status(found: dict) -> str:
	lines = [f"Bench: {found['bench']}"]
	lines += [f"crontab: {line}" for line in found["entries"]] or ["crontab: no watchdog entry (enable it)"]
	for site, last in found["sites"].items():
		if last:
			lines.append(f"{site}: last run {last['ran_at']}")
			lines += [f"  {f['status']}: {f['finding']}" for f in last["findings"]]
		else:
			lines.append(f"{site}: never watched")
	return "\n".join(lines)
