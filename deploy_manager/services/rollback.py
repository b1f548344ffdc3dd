"""Rollback candidates of this site, and the rollback that returns to one (the guide's ROLLBACK).

The rollback runs the bench's own commands as child processes (no shell) and records itself as a
Deployment (source Rollback) linked both ways with the deployment it undoes. Maintenance mode and
the scheduler are put back exactly as they were, whatever fails. Deploy Manager's own records
survive the database restore: they are the history of what happened, including this rollback.
"""

import frappe
from frappe.utils import get_sites

from deploy_manager.core import gitrepo
from deploy_manager.core import plan as core
from deploy_manager.core.deployments import AppState, compare
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import backups, bench_lock, closing, history, processes
from deploy_manager.services.monitoring import enqueue_post_deploy_verification
from deploy_manager.services.site_state import IN_ROLLBACK, OWN_TABLES, repo
from deploy_manager.services.steps import Steps


def candidates(limit: int = 20) -> list[core.Candidate]:
	current = {app: gitrepo.read_state(repo(app)).commit for app in frappe.get_installed_apps()}
	found = []
	for deployment in frappe.get_all(
		"Deployment",
		filters={
			"source": ("in", ("Bench Migrate", "Deploy Command", "Rollback")),
			"status": ("!=", lifecycle.ROLLED_BACK),
		},
		fields=["name", "backup"],
		order_by="creation desc",
		limit=limit,
	):
		apps = frappe.get_all(
			"Deployment App", filters={"parent": deployment.name}, fields=["app", "from_commit"]
		)
		status, taken_at = (
			frappe.db.get_value("Backup Record", deployment.backup, ["status", "taken_at"])
			if deployment.backup
			else (None, None)
		)
		found.append(
			core.candidate(
				deployment.name,
				{row.app: row.from_commit for row in apps},
				current,
				deployment.backup,
				status,
				str(taken_at or ""),
				has_commit=lambda app, commit: _has_commit(app, commit),
			)
		)
	return found


def _has_commit(app: str, commit: str) -> bool:
	try:
		gitrepo.git(repo(app), "cat-file", "-e", f"{commit}^{{commit}}")
		return True
	except Exception:
		return False


def find(name: str | None) -> core.Candidate:
	"""A candidate by name (before-DEP-...), or the newest restorable one."""
	found = candidates()
	if name:
		match = [c for c in found if name in (c.name, c.deployment)]
		if not match:
			raise ValueError(f"no rollback candidate {name}: see `deploy-manager candidates`")
		return match[0]
	restorable = [c for c in found if c.restorable]
	if not restorable:
		raise ValueError("no restorable rollback candidate: see `deploy-manager candidates`")
	return restorable[0]


def describe(candidate: core.Candidate) -> dict:
	"""What a candidate restores and what going back would lose."""
	lost = {}
	if candidate.backup:
		recorded = frappe.parse_json(
			frappe.db.get_value("Backup Record", candidate.backup, "table_counts") or "{}"
		)
		lost = _rows_changed_since(recorded)
	return {
		"name": candidate.name,
		"deployment": candidate.deployment,
		"restorable": candidate.restorable,
		"problems": list(candidate.problems),
		"backup": candidate.backup,
		"backup_taken_at": candidate.backup_taken_at,
		"apps": [{"app": m.app, "current": m.current, "target": m.target} for m in candidate.changed],
		"lost_since_backup": lost,
	}


def _rows_changed_since(recorded: dict, busiest: int = 5) -> dict:
	"""Tables whose row counts moved most since the backup (of the recorded ones, ours aside)."""
	now = {
		row[0]: row[1]
		for row in frappe.db.sql(
			"select table_name, table_rows from information_schema.tables where table_schema = %s",
			frappe.conf.db_name,
		)
	}
	# information_schema's figures are estimates: the busiest are counted exactly.
	moved = sorted(
		(t for t in recorded if t in now and t not in OWN_TABLES),
		key=lambda t: abs((now[t] or 0) - recorded[t]),
		reverse=True,
	)[: busiest * 2]
	exact = {t: frappe.db.sql(f"select count(*) from `{t}`")[0][0] - recorded[t] for t in moved}
	return dict(sorted(((t, d) for t, d in exact.items() if d), key=lambda item: -abs(item[1]))[:busiest])


# More touched tables than this and the fast path saves little over a full restore.
FAST_PATH_MAX_TABLES = 10


def fast_path(candidate: core.Candidate) -> tuple[list[str], list[str]] | str:
	"""(tables to restore from the backup, tables the deployment created, to drop), or why restoring
	table by table is not safe here: only the latest deployment, with its touched tables recorded."""
	undone = frappe.get_doc("Deployment", candidate.deployment)
	touched = [t for t in (undone.touched_tables or "").splitlines() if t.strip()]
	if not touched:
		return "the deployment recorded no touched tables"
	later = frappe.get_all(
		"Deployment",
		filters={"creation": (">", undone.creation), "source": ("in", ("Bench Migrate", "Deploy Command"))},
		pluck="name",
		limit=1,
	)
	if later:
		return f"{later[0]} came after it: only the latest deployment can be undone table by table"
	if len(touched) > FAST_PATH_MAX_TABLES:
		return f"it touched {len(touched)} tables (more than {FAST_PATH_MAX_TABLES})"
	recorded = frappe.parse_json(
		frappe.db.get_value("Backup Record", candidate.backup, "table_counts") or "{}"
	)
	if not recorded:
		return f"{candidate.backup} recorded no tables to tell restored ones from created ones"
	# Naming series counters only go up: restored older, they would hand out names already taken.
	touched = [t for t in touched if t != "tabSeries"]
	return [t for t in touched if t in recorded], [t for t in touched if t not in recorded]


def restore_tables(database_file: str, encrypted: bool, tables: list[str], created: list[str]):
	"""The fast path: only `tables` from the dump, into the site's own database with its own user,
	after dropping the tables the deployment created."""
	drops = "".join(f"DROP TABLE IF EXISTS `{t}`;\n" for t in created)
	backups.pipe_dump(
		database_file,
		encrypted,
		frappe.conf.db_name,
		frappe.conf.db_user or frappe.conf.db_name,
		frappe.conf.db_password,
		tables=set(tables),
		first=f"SET FOREIGN_KEY_CHECKS=0;\n{drops}".encode(),
	)


def plan(candidate: core.Candidate, with_files: bool = False) -> core.Plan:
	platform = get_settings().platform
	return core.plan(candidate, frappe.local.site, platform, processes.restart_command(), with_files)


def other_sites() -> list[str]:
	return [site for site in get_sites() if site != frappe.local.site]


def execute(
	candidate: core.Candidate, with_files: bool, force: bool, accept_other_sites: bool, fast: bool = False
) -> str:
	"""The rollback, on the bench platform; returns the rollback Deployment's name."""
	the_plan = plan(candidate, with_files)
	if not the_plan.runnable:
		raise ValueError(
			f"on {the_plan.platform} the rollback deploys an image; follow the plan:\n{the_plan.text()}"
		)
	if not candidate.restorable:
		raise ValueError(f"{candidate.name} cannot be restored: {'; '.join(candidate.problems)}")
	others = other_sites()
	if others and not accept_other_sites:
		raise ValueError(
			f"checking out code moves every site of this bench ({', '.join(others)}): pass"
			" --accept-other-sites to roll back anyway"
		)
	tables = fast_path(candidate) if fast else None
	if isinstance(tables, str):
		raise ValueError(f"the fast path is not safe here: {tables}; roll back without --fast")
	dirty = [m.app for m in candidate.changed if gitrepo.read_state(repo(m.app)).dirty]
	if dirty and not force:
		raise ValueError(f"uncommitted changes in {', '.join(dirty)}: commit or stash them, or pass --force")
	_check_restorable(candidate, with_files, fast=bool(tables))
	with bench_lock.one_change_at_a_time(f"a rollback to {candidate.name}"):
		return Rollback(candidate, with_files, force, tables).run()


def _check_restorable(candidate: core.Candidate, with_files: bool, fast: bool):
	"""What the restore needs, checked before any code moves: the backup read again, its files, and
	(for a full restore) the database admin's credentials."""
	record = frappe.get_doc("Backup Record", candidate.backup)
	backups.verify(record)
	frappe.db.commit()
	if record.status != "Verified":
		raise ValueError(f"{record.name} is {record.status} now: {record.status_message}")
	kinds = {row.file_type for row in record.files}
	if with_files and not {"Public Files", "Private Files"} <= kinds:
		raise ValueError(f"{record.name} holds no files: roll back without --files")
	if not fast and frappe.conf.root_password is None:
		raise ValueError("restoring needs root_login and root_password in common_site_config.json")


class Rollback(Steps):
	def __init__(self, candidate: core.Candidate, with_files: bool, force: bool, tables=None):
		super().__init__(None)
		self.candidate, self.with_files, self.force = candidate, with_files, force
		self.tables = tables  # (restore, drop) for the fast path

	def run(self) -> str:
		before = [AppState(m.app, commit=m.current) for m in self.candidate.moves]
		self.doc = lifecycle.start(
			"Rollback",
			compare(before, [AppState(m.app, commit=m.target) for m in self.candidate.moves]),
			platform=core.BENCH,
			rollback_of=self.candidate.deployment,
		)
		self.doc.add_log(f"Rollback to {self.candidate.name} started by {self.doc.triggered_by}")
		self.doc.insert(ignore_permissions=True)
		frappe.db.commit()
		try:
			# Maintenance first: writes made after the safety backup began would be lost by the restore.
			with closing.closed_site(self.doc.name):
				self.step("safety backup", self.safety_backup)
				for move in self.candidate.changed:
					self.step(f"check out {move.app}", lambda m=move: self.checkout(m.app, m.target))
					self.step(f"requirements of {move.app}", lambda m=move: processes.install(m.app))
					self.step(
						f"node packages of {move.app}",
						lambda m=move: processes.node_packages(m.app, m.current, m.target),
					)
					self.step(f"build {move.app}", lambda m=move: processes.build(m.app))
				self.step("restore", self.restore, touches_database=True)
				self.step(
					"migrate", lambda: self.bench("migrate", "--skip-search-index"), touches_database=True
				)
				self.step("clear cache", lambda: self.bench("clear-cache"))
		except BaseException as e:
			# BaseException: an operator's Ctrl-C must not leave the site in maintenance either.
			self.fail(self.current or "maintenance on", e)
			raise RuntimeError(f"{self.doc.name}: {self.doc.failure_reason}") from e
		try:
			self.step("restart", processes.restart)
		except Exception as e:
			# The rollback itself is done: a process manager that refuses is a warning, not a failure.
			self.doc.add_log(f"restart: not done ({e}); restart the bench's web server and workers by hand")
		self.finish()
		return self.doc.name

	def bench(self, *args: str) -> str:
		# The migrate it runs records nothing of its own: this rollback records itself.
		return processes.bench(*args, env={IN_ROLLBACK: "1"})

	def checkout(self, app: str, commit: str) -> str:
		force = ["--force"] if self.force else []
		return gitrepo.git(repo(app), "checkout", *force, "--detach", commit, timeout=600)

	def safety_backup(self):
		backup = backups.take("Pre-deploy", deployment=self.doc.name)
		if backup.status != "Verified":
			raise RuntimeError(f"the safety backup {backup.name} is {backup.status}: {backup.status_message}")
		self.doc.backup = backup.name
		return backup

	def restore(self) -> str:
		"""The database (and files) from the candidate's backup, with Frappe's own restore; our
		records kept aside meanwhile and put back (services/history.py)."""
		record = frappe.get_doc("Backup Record", self.candidate.backup)
		paths = {row.file_type: backups.path_of(row.path) for row in record.files}
		if self.tables and not self.with_files:
			restore, created = self.tables
			restore_tables(paths["Database"], record.encrypted, restore, created)
			return f"fast path: restored {', '.join(restore) or 'no table'}; dropped {', '.join(created) or 'no table'}"
		# Frappe's restore takes the admin's password from common_site_config: never on a command line.
		args = [
			"restore",
			paths["Database"],
			"--force",
			"--db-root-username",
			frappe.conf.root_login or "root",
		]
		if self.with_files:
			args += [
				"--with-public-files",
				paths["Public Files"],
				"--with-private-files",
				paths["Private Files"],
			]
		frappe.db.commit()
		with history.kept_aside(self.doc.name):
			frappe.db.close()
			try:
				output = self.bench(*args)
			finally:
				frappe.connect()
		self.doc = frappe.get_doc("Deployment", self.doc.name)
		return output

	def fail(self, step: str, error: BaseException):
		safety = self.doc.backup or "none was taken"
		code = ""
		if not self.database_touched:
			# The database was not touched: the code goes back to what runs with it.
			for move in self.candidate.changed:
				try:
					self.checkout(move.app, move.current)
				except Exception:
					code = " Some apps could not be checked out again: see their working trees."
		reason = (
			f"{step} failed: {error}. Safety backup: {safety}. {closing.flags_now()}{code} The way back: bench --site {frappe.local.site} deploy-manager backup --verify"
			f" {safety}, then restore it with `bench restore` and check out the commits in this record's apps table."
		)
		self.record_failure(reason, error)

	def finish(self):
		# No reload: every step saved this document, and what is only in memory yet (the flags put
		# back, a restart that failed) belongs in its log.
		after = [AppState(m.app, commit=gitrepo.read_state(repo(m.app)).commit) for m in self.candidate.moves]
		before = [AppState(row.app, commit=row.from_commit) for row in self.doc.apps]
		self.doc.set_apps(compare(before, after))
		self.doc.finish("Rollback", "; post-deploy verification queued")
		self.doc.save(ignore_permissions=True)
		# Locked: a re-check of it in its window may be judging it this very moment.
		undone = frappe.get_doc("Deployment", self.candidate.deployment, for_update=True)
		undone.mark_rolled_back(self.doc.name)
		undone.save(ignore_permissions=True)
		enqueue_post_deploy_verification(self.doc.name)
		frappe.db.commit()
