"""Backups the site can trust: taken through Frappe, proven by reading them end to end and by restore
drills, and kept while they are rollback points.

Every backup Deploy Manager takes lives in `private/deploy_manager/backups/<record>/`, outside the
folder Frappe's own clean-up deletes from (backups older than a day). Retention there deletes only
what no rollback point needs, and records why.
"""

import gzip
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import frappe
import pymysql
from frappe.utils import add_to_date, cint, get_datetime, now_datetime
from frappe.utils.backups import get_backup_path, new_backup

from deploy_manager.core import backups as integrity
from deploy_manager.core import environment
from deploy_manager.core.checks import Secret
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.services import lock_guard
from deploy_manager.services.site_state import snapshot_apps

KINDS = {
	"Database": "backup_path_db",
	"Public Files": "backup_path_files",
	"Private Files": "backup_path_private_files",
	"Site Config": "backup_path_conf",
}
USABLE = ("Verified", "Not Verified", "Unverifiable")


def folder(record: str) -> str:
	return os.path.join(_site(), "private", "deploy_manager", "backups", record)


def _site() -> str:
	return os.path.abspath(frappe.get_site_path())


def take(trigger: str, with_files: bool = False, deployment: str | None = None):
	"""A full backup through Frappe's backup API (forced: never an older one reused), recorded with
	each file's size and SHA-256 and the apps' commits, then verified (row counts read from the dump
	itself, the snapshot it holds). Taken into a folder of its own first: a backup that fails leaves
	neither a record nor files."""
	staging = folder(f"taking-{frappe.generate_hash(length=10)}")
	try:
		odb = new_backup(ignore_files=not with_files, backup_path=staging, force=True)
	except BaseException:
		shutil.rmtree(staging, ignore_errors=True)
		raise
	doc = frappe.get_doc(
		{
			"doctype": "Backup Record",
			"site": frappe.local.site,
			"trigger": trigger,
			"deployment": deployment,
			"taken_at": now_datetime(),
			"status": "Not Verified",
			"encrypted": cint(frappe.get_system_settings("encrypt_backup")),
		}
	).insert(ignore_permissions=True)
	try:
		os.rename(staging, folder(doc.name))
		return _record(doc, odb)
	except BaseException:
		# The record goes with the transaction: its files must not stay behind under its name.
		shutil.rmtree(staging, ignore_errors=True)
		shutil.rmtree(folder(doc.name), ignore_errors=True)
		raise


def _record(doc, odb):
	doc.location = os.path.relpath(folder(doc.name), _site())
	for kind, attribute in KINDS.items():
		taken = getattr(odb, attribute, None)
		path = taken and os.path.join(folder(doc.name), os.path.basename(taken))
		if path and os.path.exists(path):
			_add_file(doc, kind, path)
	for state in snapshot_apps():
		doc.append(
			"apps",
			{"app": state.app, "version": state.version, "branch": state.branch, "commit": state.commit},
		)
	return verify(doc, first=True)


def _add_file(doc, kind: str, path: str):
	doc.append(
		"files",
		{
			"file_type": kind,
			"path": os.path.relpath(path, _site()),
			"size": os.path.getsize(path),
			"encrypted": doc.encrypted and kind != "Site Config",
		},
	)


def verify(doc, first: bool = False):
	"""Read every file of the set end to end. The first verification also records what the dump
	holds (tables and rows), which later ones and the drill are compared with."""
	recorded = json.loads(doc.table_counts or "{}")
	outcomes = []
	for row in doc.files:
		path = path_of(row.path)
		outcome = _verify_file(row, path, list(recorded), first)
		if outcome.sha256:
			if row.sha256 and row.sha256 != outcome.sha256:
				outcome = integrity.Integrity(
					integrity.CORRUPT, f"{row.file_type}: its SHA-256 changed since the backup was taken"
				)
			row.sha256 = row.sha256 or outcome.sha256
		if first and row.file_type == "Database" and outcome.status == integrity.VERIFIED:
			doc.table_counts = json.dumps(outcome.details.get("rows", {}), indent=1, sort_keys=True)
		outcomes.append((row.file_type, outcome))
	doc.status, doc.status_message = _overall(outcomes)
	doc.verified_at = now_datetime()
	# Another verification of this set may have saved meanwhile (a rollback's and the daily one at
	# once): the newest result stands, instead of failing on the timestamp.
	doc.modified = frappe.db.get_value("Backup Record", doc.name, "modified", for_update=True) or doc.modified
	doc.save(ignore_permissions=True)
	return doc


def _verify_file(row, path: str, tables: list[str], first: bool) -> integrity.Integrity:
	# A Secret: Frappe logs a timed-out job's locals, and redacts `passphrase` by no name of its own.
	passphrase = backup_encryption_key() if row.encrypted else None
	if row.file_type == "Database":
		return integrity.verify_database(
			path,
			expected_tables=tables or None,
			database=frappe.conf.db_name,
			passphrase=passphrase,
			count_rows=first,
		)
	if row.file_type == "Site Config":
		return integrity.verify_config(path)
	return integrity.verify_tar(path, passphrase=passphrase)


def _overall(outcomes: list[tuple[str, integrity.Integrity]]) -> tuple[str, str]:
	"""The worst file decides: Missing, then Corrupt, then Unverifiable."""
	if not outcomes:
		return integrity.MISSING, "the record names no files"
	for status in (integrity.MISSING, integrity.CORRUPT, integrity.UNVERIFIABLE):
		bad = [f"{kind}: {o.message}" for kind, o in outcomes if o.status == status]
		if bad:
			return status, "; ".join(bad)
	return integrity.VERIFIED, "; ".join(f"{kind}: {o.message}" for kind, o in outcomes)


def path_of(relative: str) -> str:
	"""A path stored on a record, resolved inside the site: a record cannot point elsewhere."""
	return str(integrity.inside(relative, _site()))


def before_deploy(deployment: str | None):
	"""From before_migrate: the pre-deploy backup, when Settings want one. A failure is recorded on
	the deployment; it stops the migrate only when Settings say so. Nothing else here may break the
	migrate."""
	try:
		# Read with get(): before_migrate runs before the schema sync that may bring these fields.
		settings = get_settings()
		wanted = settings.pre_deploy_backup
		environment = frappe.db.get_value("Deployment", deployment, "environment") if deployment else None
		if not deployment or wanted == "Never" or (wanted == "In Production" and environment != "Production"):
			return
		# The backup reads every table: Frappe's migrate would count them all as touched by the deploy.
		touched = set(frappe.flags.touched_tables or ())
		try:
			failure = _pre_deploy_backup(deployment)
		finally:
			frappe.flags.touched_tables = touched
		stop = cint(settings.stop_on_backup_failure)
	except Exception:
		frappe.log_error(title="deploy_manager: pre-deploy backup could not be recorded")
		return
	if failure and stop:
		frappe.throw(
			f"Migrate stopped: the pre-deploy backup failed ({failure}). Deploy Manager Settings ask for"
			" a verified backup before every migrate."
		)


def _pre_deploy_backup(deployment: str) -> str:
	"""Take it, link it, log it on the deployment; '' or what went wrong."""
	started = time.monotonic()
	reused = None
	try:
		reused = _backup_of_this_bench_update()
		doc = (
			import_set(reused, "Pre-deploy", deployment, "bench update's own backup, the site closed since")
			if reused
			else take("Pre-deploy", deployment=deployment)
		)
		failure = (
			"" if doc.status == integrity.VERIFIED else f"{doc.name} is {doc.status}: {doc.status_message}"
		)
	except Exception as e:
		frappe.db.rollback()
		doc, failure = None, f"the backup could not be taken: {e}"
	deployment_doc = frappe.get_doc("Deployment", deployment)
	if doc:
		deployment_doc.backup = doc.name
	took = time.monotonic() - started
	how = f"reused from bench update's {os.path.basename(reused)}" if reused else "taken"
	deployment_doc.add_log(
		f"Pre-deploy backup failed ({took:.1f}s): {failure}"
		if failure
		else f"Pre-deploy backup {doc.name} {how} and verified in {took:.1f}s"
	)
	deployment_doc.save(ignore_permissions=True)
	frappe.db.commit()
	return failure


def import_existing(path: str | None = None) -> list:
	"""Backup Records for database backups in the site's backup folder (or the file or folder given,
	which must lie inside the site) that no record names yet, each verified on import."""
	target = str(integrity.inside(os.path.abspath(path or get_backup_path()), _site()))
	if not os.path.exists(target):
		raise ValueError(f"{target} does not exist")
	candidates = (
		[target]
		if os.path.isfile(target)
		else sorted(str(p) for p in Path(target).iterdir() if "-database" in p.name and ".sql" in p.name)
	)
	# A backup is known by its file name, wherever its record keeps it.
	known = {
		os.path.basename(path)
		for path in frappe.get_all("Backup File", filters={"parenttype": "Backup Record"}, pluck="path")
	}
	imported = []
	for database in candidates:
		if os.path.basename(database) in known:
			continue
		imported.append(import_set(database))
	return imported


def _backup_of_this_bench_update() -> str | None:
	"""The database file `bench update` took of this site in the run this migrate belongs to: it
	closed the site before, so a second full backup would hold the same rows. None otherwise."""
	began = environment.bench_update_started()
	if began is None:
		return None
	taken = [
		path
		for path in Path(os.path.abspath(get_backup_path())).glob("*-database*.sql*")
		if "-partial-" not in path.name and path.stat().st_mtime >= began
	]
	return str(max(taken, key=lambda path: path.stat().st_mtime)) if taken else None


def import_set(database: str, trigger: str = "Imported", deployment: str | None = None, why: str = ""):
	"""A record for one database file and its siblings (same name before "-database"), linked (or
	copied) into the record's own folder: in Frappe's folder they would be deleted within a day."""
	prefix = os.path.basename(database).split("-database")[0]
	here = os.path.dirname(database)
	names = [os.path.basename(database)] + [
		f"{prefix}{suffix}" for suffix in ("-files.tar", "-private-files.tar", "-site_config_backup.json")
	]
	kinds = ["Database", "Public Files", "Private Files", "Site Config"]
	doc = frappe.get_doc(
		{
			"doctype": "Backup Record",
			"site": frappe.local.site,
			"trigger": trigger,
			"deployment": deployment,
			"taken_at": _taken_at(database),
			"status": "Not Verified",
			"encrypted": "-enc" in os.path.basename(database),
			"status_message": why or f"imported from {os.path.relpath(here, _site())}",
		}
	).insert(ignore_permissions=True)
	os.makedirs(folder(doc.name), exist_ok=True)
	doc.location = os.path.relpath(folder(doc.name), _site())
	for kind, name in zip(kinds, names, strict=True):
		source = os.path.join(here, name)
		if not os.path.exists(source):
			continue
		kept = os.path.join(folder(doc.name), name)
		try:
			os.link(source, kept)
		except OSError:
			shutil.copy2(source, kept)
		_add_file(doc, kind, kept)
	return verify(doc, first=True)


def _taken_at(path: str):
	# Frappe names files by the site's time when it took them: 20261126_130141-...
	stamp = os.path.basename(path)[:15]
	try:
		return get_datetime(
			f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"
		)
	except Exception:
		return now_datetime()


def drill(doc) -> None:
	"""Restore the dump into a scratch database on the same server, compare its tables and rows with
	those recorded at backup time, drop it. The site's own database is never touched."""
	started = time.monotonic()
	scratch = f"dm_drill_{frappe.generate_hash(length=10)}"
	try:
		_require_restorable(doc)
		database = next(path_of(row.path) for row in doc.files if row.file_type == "Database")
		with admin_connection() as root:
			root.cursor().execute(f"CREATE DATABASE `{scratch}`")
			try:
				_restore(database, scratch, doc.encrypted)
				restored = _row_counts(root, scratch)
			finally:
				root.cursor().execute(f"DROP DATABASE IF EXISTS `{scratch}`")
		differences = integrity.compare_counts(json.loads(doc.table_counts), restored)
		doc.drill_status = "Failed" if differences else "Passed"
		doc.drill_message = (
			"; ".join(differences[:10])
			if differences
			else f"{len(restored)} tables and {sum(restored.values())} rows restored as recorded"
		)
	except Exception as e:
		doc.drill_status, doc.drill_message = "Failed", str(e)
	doc.drilled_at = now_datetime()
	doc.drill_duration = round(time.monotonic() - started, 3)
	doc.save(ignore_permissions=True)


def _require_restorable(doc):
	if doc.status != integrity.VERIFIED:
		raise ValueError(f"{doc.name} is {doc.status}; only a Verified backup can be drilled")
	if not doc.table_counts:
		raise ValueError(f"{doc.name} has no table counts recorded at backup time to compare with")


class admin_connection:
	"""A connection with the bench's database admin (root_login/root_password, as `bench new-site`
	uses), which may create and drop the scratch database."""

	def __enter__(self):
		login, password = _root_credentials()
		self.connection = pymysql.connect(
			host=frappe.conf.db_host or "127.0.0.1",
			port=cint(frappe.conf.db_port) or 3306,
			user=login,
			password=password,
			unix_socket=frappe.conf.db_socket or None,
			autocommit=True,
		)
		return self.connection

	def __exit__(self, *exc):
		self.connection.close()


def _root_credentials() -> tuple[str, str]:
	login, password = frappe.conf.root_login or "root", frappe.conf.root_password
	if password is None:
		raise ValueError(
			"a drill needs the database admin's credentials: set root_login and root_password in"
			" common_site_config.json"
		)
	return login, password


def _restore(database: str, scratch: str, encrypted: bool):
	login, password = _root_credentials()
	pipe_dump(database, encrypted, scratch, login, password)


def pipe_dump(
	database: str,
	encrypted: bool,
	into: str,
	login: str,
	password: str,
	tables: set[str] | None = None,
	first: bytes = b"",
):
	"""gzip (after gpg for an encrypted dump) into the mariadb client, as Frappe's restore does; no
	shell, and the password in a private option file rather than on a command line. With `tables`,
	only their parts of the dump go in (after the statements in `first`)."""
	client = shutil.which("mariadb") or shutil.which("mysql")
	with tempfile.TemporaryDirectory() as private:
		options = os.path.join(private, "client.cnf")
		with open(os.open(options, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
			f.write(f"[client]\nuser={_quoted(login)}\npassword={_quoted(password)}\n")
			# The server's own bound on lock waits, behind the lock guard's (which names the holder).
			wait = 2 * lock_guard.bound()
			f.write(
				f"[mysql]\ninit-command=SET SESSION lock_wait_timeout={wait}, innodb_lock_wait_timeout={wait}\n"
			)
		connect = (
			[f"--socket={frappe.conf.db_socket}"]
			if frappe.conf.db_socket
			else [
				f"--host={frappe.conf.db_host or '127.0.0.1'}",
				f"--port={cint(frappe.conf.db_port) or 3306}",
			]
		)
		steps = [_gpg_decrypt(database)] if encrypted else []
		command = [client, f"--defaults-extra-file={options}", *connect, into]
		if tables is None:
			steps.append(
				subprocess.Popen(
					["gzip", "-cd", *([] if encrypted else [database])],
					stdin=steps[-1].stdout if steps else None,
					stdout=subprocess.PIPE,
					stderr=subprocess.PIPE,
				)
			)
			with tempfile.TemporaryFile() as errors:
				client_process = subprocess.Popen(
					command, stdin=steps[-1].stdout, stdout=subprocess.DEVNULL, stderr=errors
				)
				# Only the consumers hold the pipes now: one that stops makes the one before it stop too.
				for step in steps:
					step.stdout.close()
				client_process.wait()
				errors.seek(0)
				mariadb = subprocess.CompletedProcess(
					command, client_process.returncode, "", errors.read().decode(errors="replace")
				)
		else:
			# Decompressed here, as the lines are filtered here: no second process and pipe to copy through.
			with gzip.open(steps[-1].stdout if steps else database, "rb") as dump:
				mariadb = _feed(command, first, integrity.select_tables(dump, tables))
			for _ in iter(lambda: steps[-1].stdout.read(1 << 20), b"") if steps else ():
				pass  # gpg runs to its end, so that its exit code speaks of the file, not of a closed pipe
		for step in steps:
			step.stdout.close()
			step.wait()
	failed = [s for s in steps if s.returncode] + ([mariadb] if mariadb.returncode else [])
	if failed:
		raise RuntimeError(f"the restore into {into} failed: {(mariadb.stderr or '').strip()[:300]}")


def _quoted(value: str) -> str:
	# Option files end a value at "#" unless it is quoted.
	return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _feed(command: list[str], first: bytes, lines) -> subprocess.CompletedProcess:
	with tempfile.TemporaryFile() as errors:
		client = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
		try:
			client.stdin.write(first)
			client.stdin.writelines(lines)
			client.stdin.close()
		except BrokenPipeError:
			pass  # the client stopped: its error says why
		client.wait()
		errors.seek(0)
		return subprocess.CompletedProcess(
			command, client.returncode, "", errors.read().decode(errors="replace")
		)


def backup_encryption_key() -> Secret | None:
	"""The site's backup encryption key, masked in every repr (so in tracebacks with their locals)."""
	key = frappe.conf.get("backup_encryption_key")
	return Secret(key) if key else None


def _gpg_decrypt(database: str) -> subprocess.Popen:
	key = backup_encryption_key()
	if not key:
		raise ValueError("the dump is encrypted and this site has no backup_encryption_key")
	gpg = subprocess.Popen(
		["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", database],
		stdin=subprocess.PIPE,
		stdout=subprocess.PIPE,
		stderr=subprocess.PIPE,
	)
	gpg.stdin.write(key.encode())
	gpg.stdin.close()
	return gpg


def _row_counts(root, database: str) -> dict[str, int]:
	with root.cursor() as cursor:
		cursor.execute(
			"select table_name from information_schema.tables where table_schema = %s and table_type = 'BASE TABLE'",
			(database,),
		)
		tables = [row[0] for row in cursor.fetchall()]
		counts = {}
		for table in tables:
			cursor.execute(f"select count(*) from `{database}`.`{table}`")
			counts[table] = cursor.fetchone()[0]
	return counts


def keep(apply: bool) -> list[dict]:
	"""Retention: which backups taken by Deploy Manager are rollback points (kept, and why), which
	may go (older than Settings' days and no rollback point), and which have lost their files. With
	`apply` it deletes those that may go and marks the records; without, it only says."""
	settings = get_settings()
	points = _rollback_points(cint(settings.rollback_points))
	cutoff = add_to_date(now_datetime(), days=-cint(settings.keep_backups_days))
	decisions = []
	for record in frappe.get_all(
		"Backup Record",
		filters={"status": ("!=", "Deleted")},
		fields=["name", "trigger", "taken_at", "location", "rollback_point", "keep_reason"],
		order_by="taken_at desc",
	):
		if record.name in points:
			decision = {"name": record.name, "action": "keep", "reason": points[record.name]}
		elif not (record.location or "").startswith(_own_prefix()):
			continue  # not in our folder: not ours to delete
		elif get_datetime(record.taken_at) < cutoff:
			decision = {
				"name": record.name,
				"action": "delete",
				"reason": f"not a rollback point and older than {cint(settings.keep_backups_days)} days",
			}
		else:
			decision = {"name": record.name, "action": "keep", "reason": "younger than the retention period"}
		decisions.append(decision)
		if apply:
			_apply(decision)
	if apply:
		mark_missing()
	return decisions


def _own_prefix() -> str:
	return os.path.join("private", "deploy_manager", "backups")


def _rollback_points(latest: int) -> dict[str, str]:
	"""Backup -> why it is a rollback point: the pre-deploy backups of the latest deployments, and
	the newest Verified backup (there is always one to go back to)."""
	points = {}
	for deployment in frappe.get_all(
		"Deployment",
		filters={"backup": ("is", "set")},
		fields=["name", "backup"],
		order_by="creation desc",
		limit=latest,
	):
		points[deployment.backup] = f"rollback point: the backup taken before {deployment.name}"
	newest = frappe.get_all(
		"Backup Record", filters={"status": "Verified"}, order_by="taken_at desc", limit=1, pluck="name"
	)
	if newest:
		points.setdefault(newest[0], "rollback point: the newest verified backup")
	return points


def _apply(decision: dict):
	doc = frappe.get_doc("Backup Record", decision["name"])
	if decision["action"] == "keep":
		doc.rollback_point = decision["reason"].startswith("rollback point")
		doc.keep_reason = decision["reason"]
	else:
		shutil.rmtree(folder(doc.name), ignore_errors=True)
		doc.status, doc.status_message = (
			"Deleted",
			f"Deleted by retention on {now_datetime()}: {decision['reason']}",
		)
		doc.rollback_point, doc.keep_reason = 0, ""
	doc.save(ignore_permissions=True)


def mark_missing() -> list[str]:
	"""Records whose files have vanished (deleted by hand, or by Frappe's clean-up for imported ones)
	become Missing; the Backups check then reports them."""
	missing = []
	for name in frappe.get_all("Backup Record", filters={"status": ("in", USABLE)}, pluck="name"):
		doc = frappe.get_doc("Backup Record", name)
		gone = [row.path for row in doc.files if not os.path.exists(os.path.join(_site(), row.path))]
		if gone:
			doc.status, doc.status_message = integrity.MISSING, "files gone: " + ", ".join(gone)
			doc.save(ignore_permissions=True)
			missing.append(name)
	return missing


def keep_on_schedule():
	"""Daily: retention, and records whose files vanished marked Missing."""
	keep(apply=True)
	frappe.db.commit()


def drill_on_schedule():
	"""Weekly, when Settings ask for it: a restore drill of the newest verified backup."""
	if not cint(get_settings().weekly_drill):
		return
	newest = frappe.get_all(
		"Backup Record", filters={"status": "Verified"}, order_by="taken_at desc", limit=1, pluck="name"
	)
	if newest:
		drill(frappe.get_doc("Backup Record", newest[0]))
		frappe.db.commit()


def take_on_request(with_files: bool, user: str):
	""" "Back up now" from Desk, in a long-queue job."""
	doc = take("Manual", with_files=bool(with_files))
	frappe.db.commit()
	_tell(user, doc)


def check_on_request(name: str, restore_drill: bool, user: str):
	doc = frappe.get_doc("Backup Record", name)
	if restore_drill:
		drill(doc)
	else:
		verify(doc)
	frappe.db.commit()
	_tell(user, doc)


def _tell(user: str, doc):
	frappe.publish_realtime(
		"deploy_manager_backup",
		{"name": doc.name, "status": doc.status, "drill_status": doc.drill_status},
		user=user,
		after_commit=True,
	)


def report(doc) -> dict:
	"""A Backup Record as the shell prints it."""
	return {
		"name": doc.name,
		"site": doc.site,
		"trigger": doc.trigger,
		"taken_at": str(doc.taken_at),
		"status": doc.status,
		"message": doc.status_message,
		"files": [
			{"type": f.file_type, "path": f.path, "size": f.size, "sha256": f.sha256} for f in doc.files
		],
		"drill": {"status": doc.drill_status, "message": doc.drill_message, "seconds": doc.drill_duration},
	}


def render(reports: list[dict]) -> str:
	lines = []
	for r in reports:
		lines.append(f"{r['name']} ({r['trigger']}, {r['taken_at']}): {r['status']}: {r['message']}")
		lines += [f"  {f['type']:<13} {f['size']:>12} B  {f['sha256']}  {f['path']}" for f in r["files"]]
		if r["drill"]["status"] not in (None, "", "Not Drilled"):
			lines.append(
				f"  drill: {r['drill']['status']} in {r['drill']['seconds']}s: {r['drill']['message']}"
			)
	return "\n".join(lines) or "No backup."
