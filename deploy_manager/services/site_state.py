"""What several services need to know of the site, from no other service: the site opened, its apps
and their commits, its patches, Deploy Manager's own records, and the markers with which a deploy or
a rollback tells the migrate it runs that it records itself."""

import contextlib
import re
from pathlib import Path

import frappe

from deploy_manager.core import gitrepo
from deploy_manager.core.deployments import AppState

APP = "deploy_manager"
# Set by a rollback for the migrate it runs: it records itself.
IN_ROLLBACK = "DEPLOY_MANAGER_ROLLBACK"
# Set by the deploy command for the migrate it runs: the name of its Deployment, which the migrate
# records into (patches, touched tables, a failure) instead of opening one of its own.
IN_DEPLOY = "DEPLOY_MANAGER_DEPLOYMENT"
# Deploy Manager's own records, the history of what happened to the site: never part of what a
# deploy changed, and kept across a rollback's restore.
OWN_RECORDS = (
	"Deployment",
	"Deployment App",
	"Deployment Patch",
	"Bench Deployment",
	"Bench Deployment Site",
	"Backup Record",
	"Backup File",
	"Backup App",
	"Verification Check",
	"Verification Result",
	"Deploy Evidence",
)
OWN_TABLES = frozenset(f"tab{doctype}" for doctype in OWN_RECORDS)
# Site and bench config keys whose values are secrets, by what their names end with.
SECRET_KEYS = re.compile(r"(password|passphrase|secret|token|encryption_key|api_key)$")


@contextlib.contextmanager
def on_site(site: str, connect: bool = True):
	"""Frappe set up for `site` inside (connected unless told not to: a verification runs with the
	database down), torn down after."""
	frappe.init(site=site)
	try:
		if connect:
			frappe.connect()
		yield
	finally:
		frappe.destroy()


def config_secrets() -> tuple[str, ...]:
	"""The secret values of the site's config (the database password, the encryption keys): never to
	be shown, whatever text they turn up in (a child's command line)."""
	return tuple(str(value) for key, value in frappe.get_conf().items() if SECRET_KEYS.search(key) and value)


def has_app() -> bool:
	return APP in frappe.get_installed_apps()


def own_naming_series() -> list[str]:
	"""The prefixes our records are named with (DEP-, BKP-, ...), from their DocTypes."""
	autonames = (frappe.get_meta(doctype).autoname or "" for doctype in OWN_RECORDS)
	return [name.split(".")[0] for name in autonames if "." in name]


def repo(app: str) -> Path:
	return Path(frappe.get_app_path(app)).parent


def snapshot_apps() -> list[AppState]:
	states = []
	for app in frappe.get_installed_apps():
		state = gitrepo.read_state(repo(app))
		error = state.error or ("shallow clone: earlier commits may be missing" if state.shallow else "")
		states.append(AppState(app, _app_version(app), state.branch, state.commit, state.dirty, error))
	return states


def all_patches() -> list[str]:
	from frappe.modules.patch_handler import get_all_patches

	try:
		# Frappe logs `finally:` patches without their prefix.
		return [p.removeprefix("finally:") for p in get_all_patches()]
	except Exception:
		# A broken patches.txt must not stop us from recording that the migrate failed.
		frappe.log_error(title="deploy_manager: could not list patches")
		return []


def executed_patches() -> set[str]:
	return set(frappe.get_all("Patch Log", filters={"skipped": 0}, pluck="patch"))


def pending_patches() -> list[str]:
	executed = executed_patches()
	return [p for p in all_patches() if p not in executed]


_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']*)["']""", re.MULTILINE)


def _app_version(app: str) -> str:
	"""From the file on disk, not the imported module: a deploy or rollback imports the apps and then
	checks out other commits, after which the module still holds the old version."""
	try:
		text = (Path(frappe.get_app_path(app)) / "__init__.py").read_text()
	except Exception:
		return ""
	found = _VERSION.search(text)
	return found.group(1) if found else ""
