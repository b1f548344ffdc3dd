"""The lock guard (core/dblocks.py) around this site's steps that change the schema or replace the
database: a deploy's migrate, a rollback's restore. It watches as the bench's database admin where
common_site_config names one (it then sees every connection and may end the site's leftovers and a
restore's waiting statements), else as the site's own user (it sees that user's connections only).
What it says goes to the terminal (stderr, so that `--json` stays one document) and to the bench's
`logs/deploy_manager.log` as it happens, and into the step's Deployment log after."""

import contextlib
import sys

import frappe
import pymysql
from frappe.utils import cint

from deploy_manager.core.dblocks import LockGuard
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)


class LockWaitStopped(RuntimeError):
	"""A step waited for a database lock past the bound and was stopped; the message names the holder."""


def bound() -> int:
	"""Seconds a step may wait for one lock (Settings)."""
	return cint(get_settings().lock_wait_timeout)


@contextlib.contextmanager
def guarded(step: str):
	"""Watch the site's database while the step inside runs, in this process or its children (the site
	is closed: its own leftover connections are ended); a step the guard stopped raises
	LockWaitStopped naming what held it."""
	guard = _guard(step, site_closed=True, ours=_own_connection())
	with guard:
		try:
			yield guard
		except BaseException as e:
			if guard.stopped:
				raise LockWaitStopped(f"{guard.stopped} ({type(e).__name__}: {e})") from e
			raise


def watch_migrate() -> LockGuard:
	"""The guard of a `bench migrate` run by hand or by `bench update`, from inside that migrate
	process: started by before_migrate, stopped by after_migrate (a migrate that dies takes it along).
	Such a migrate leaves the site open unless its operator closed it: only a closed site's leftovers
	are ended. Past the bound the waiting statement is ended all the same: while an ALTER waits, every
	new query on its table queues behind it, so a waiting migrate is an outage of that table."""
	guard = _guard("migrate", site_closed=bool(cint(frappe.conf.maintenance_mode)))
	guard.__enter__()
	return guard


def _guard(step: str, site_closed: bool, ours: set[int] | None = None) -> LockGuard:
	logger = frappe.logger("deploy_manager")
	site = frappe.local.site

	def say(text: str):
		# From the guard's thread: nothing here may touch frappe.local.
		print(f"{step}: {text}", file=sys.stderr, flush=True)
		logger.warning(f"{site}: {step}: {text}")

	return LockGuard(
		_connect,
		frappe.conf.db_name,
		frappe.conf.db_user or frappe.conf.db_name,
		bound(),
		say=say,
		end_leftovers=site_closed,
		ours=ours,
	)


def _connect():
	"""As the database admin, who sees every connection; as the site's own user when there is no admin
	login or it is refused (a stale root_password must not stop a deploy: the guard then sees less)."""
	conf = frappe.conf
	site_login = (conf.db_user or conf.db_name, conf.db_password)
	logins = [(conf.root_login or "root", conf.root_password)] if conf.root_password is not None else []
	for n, (login, password) in enumerate([*logins, site_login]):
		try:
			return pymysql.connect(
				host=conf.db_host or "127.0.0.1",
				port=cint(conf.db_port) or 3306,
				user=login,
				password=password or "",
				unix_socket=conf.db_socket or None,
				autocommit=True,
				connect_timeout=10,
			)
		except pymysql.MySQLError:
			if n == len(logins):
				raise


def _own_connection() -> set[int]:
	"""This process's own connection, when it has one: never a leftover."""
	try:
		return {int(frappe.db.sql("select connection_id()")[0][0])}
	except Exception:
		return set()
