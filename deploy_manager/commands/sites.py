"""What every command shares: which sites it works on, how they are opened (and skipped when they
lack the app), and how its output is printed."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


def sites_of(context, one: bool = False) -> list[str]:
	if not context.sites:
		raise click.UsageError("name a site: bench --site SITE deploy-manager ... (or --site all)")
	if one and len(context.sites) > 1:
		raise click.UsageError("this command works on one site: --site SITE")
	return context.sites


@contextmanager
def one_site(context):
	"""The one site of `--site`, opened, with deploy_manager installed, and not closed by a deploy or
	rollback whose processes still run (its database may be half restored)."""
	from deploy_manager.services import closing
	from deploy_manager.services.site_state import has_app, on_site

	with on_site(sites_of(context, one=True)[0]):
		if why := closing.still_closing():
			raise click.ClickException(why)
		if not has_app():
			raise click.ClickException("deploy_manager is not installed on this site")
		yield


def each_site(context, fn: Callable, **kwargs) -> Iterator[tuple[str, object]]:
	"""Yield (site, result) for each site of `--site`. A failure is yielded as its exception. With
	several sites, one without deploy_manager is skipped with a note on stderr (result None); named
	alone, it is an error."""
	from deploy_manager.services import closing
	from deploy_manager.services.site_state import has_app, on_site

	sites = sites_of(context)
	for site in sites:
		try:
			with on_site(site):
				if why := closing.still_closing():
					yield site, closing.StillClosing(why)
				elif has_app():
					yield site, fn(**kwargs)
				elif len(sites) > 1:
					click.echo(f"{site}: deploy_manager is not installed, skipped", err=True)
					yield site, None
				else:
					yield site, click.ClickException("deploy_manager is not installed on this site")
		except Exception as e:
			yield site, e


def emit(data: dict | list, as_json: bool, text: str | Callable[[], str]):
	"""One JSON document on stdout (and nothing else there), or the text for people."""
	if as_json:
		click.echo(json.dumps(data, indent=1, default=str))
	else:
		click.echo(text() if callable(text) else text)


def say_reopened(message: str | None):
	if message:
		click.secho(f"An earlier deploy or rollback was interrupted: {message}", fg="yellow", err=True)
