"""Benchmark of backups, run with the bench's python from its sites folder (see benchmark-backups).

On a site holding at least 100 MB of generated rows (a table of its own, filled once):
1. Integrity verification of a backup set against the backup itself: Frappe's backup (new_backup),
   then our verification of the same set (goal: at most 0.3 of the backup's time). The first
   verification, which also counts every table's rows in the dump, is printed beside it.
2. A restore drill of that dump against a plain `bench --site RESTORE_SITE restore` of the same dump
   (goal: at most 1.1 times).
3. The pre-deploy backup under `bench update`: a second backup (ours) against reusing the one bench
   just took (recorded and verified), each added to bench's own backup time.
4. The rollback fast path, restoring five tables from that dump into the site, against the same full
   restore (goal: at most 0.2 of it).
"""

import os
import subprocess
import sys
import time

import frappe
from frappe.utils.backups import new_backup

from deploy_manager.services import backups, rollback

TABLE = "tabDM Benchmark Row"
TARGET_MB = 100


def fill():
	"""Rows of random text until the table holds TARGET_MB of data. Each row is 30 independent hashes:
	it compresses about as much as real business data does (a repeated string would shrink 40-fold
	and make every gzip step look fast)."""
	frappe.db.sql_ddl(
		f"""create table if not exists `{TABLE}` (
			name varchar(140) not null primary key, n int not null, payload text not null
		) engine=InnoDB"""
	)
	if not frappe.db.sql(f"select count(*) from `{TABLE}`")[0][0]:
		frappe.db.sql(
			f"insert into `{TABLE}` values ('r0', 0, concat_ws(' ', md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand())))"
		)
	while size_mb() < TARGET_MB:
		offset = frappe.db.sql(f"select max(n) + 1 from `{TABLE}`")[0][0]
		frappe.db.sql(
			f"""insert into `{TABLE}` (name, n, payload)
			select concat('r', n + {offset}), n + {offset}, concat_ws(' ', md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand()), md5(rand())) from `{TABLE}`"""
		)
		frappe.db.commit()
		frappe.db.sql(f"analyze table `{TABLE}`")
	rows = frappe.db.sql(f"select count(*) from `{TABLE}`")[0][0]
	print(f"site {frappe.local.site}: {size_mb():.0f} MB in the database, {rows} generated rows")


def size_mb() -> float:
	return frappe.db.sql(
		"select sum(data_length + index_length) / 1048576 from information_schema.tables where table_schema = %s",
		frappe.conf.db_name,
	)[0][0]


def timed(fn):
	started = time.perf_counter()
	value = fn()
	return value, time.perf_counter() - started


def main(site: str, restore_site: str):
	frappe.init(site=site)
	frappe.connect()
	fill()
	odb, backup_s = timed(lambda: new_backup(ignore_files=True, force=True))
	print(
		f"Frappe backup (database): {backup_s:.2f} s, {os.path.getsize(odb.backup_path_db) / 1048576:.0f} MB gzipped"
	)

	doc, take_s = timed(lambda: backups.take("Manual"))
	print(f"deploy-manager backup (backup + first verification counting rows): {take_s:.2f} s, {doc.status}")
	# Under `bench update`, the pre-deploy backup is bench's own, taken moments before with the site
	# closed: recorded and verified instead of a second dump.
	reused, reuse_s = timed(lambda: backups.import_set(os.path.abspath(odb.backup_path_db), "Pre-deploy"))
	print(
		f"pre-deploy backup reusing bench update's (record + verification): {reuse_s:.2f} s, {reused.status}"
	)
	print(
		f"bench update's backups of this site: {backup_s + take_s:.2f} s with a second backup,"
		f" {backup_s + reuse_s:.2f} s reusing bench's (ratio {(backup_s + reuse_s) / (backup_s + take_s):.2f})"
	)
	_, verify_s = timed(lambda: backups.verify(doc))
	print(f"integrity verification of the set: {verify_s:.2f} s, {doc.status}")
	print(f"ratio verification / backup: {verify_s / backup_s:.2f} (goal <= 0.30)")

	_, drill_s = timed(lambda: backups.drill(doc))
	print(f"restore drill: {drill_s:.2f} s, {doc.drill_status}: {doc.drill_message}")
	frappe.db.commit()
	database = os.path.join(frappe.get_site_path(), doc.files[0].path)
	login, password = frappe.conf.root_login or "root", frappe.conf.root_password
	tables = ["tabToDo", "tabNote", "tabVersion", "tabError Log", "tabPatch Log"]
	_, fast_s = timed(lambda: rollback.restore_tables(os.path.abspath(database), False, tables, []))
	frappe.destroy()

	command = [sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", restore_site, "restore"]
	command += [
		os.path.abspath(database),
		"--db-root-username",
		login,
		"--db-root-password",
		password,
		"--force",
	]
	restore, restore_s = timed(lambda: subprocess.run(command, capture_output=True, text=True))
	if restore.returncode:
		raise SystemExit(f"bench restore failed:\n{restore.stdout}\n{restore.stderr}")
	print(f"bench --site {restore_site} restore of the same dump: {restore_s:.2f} s")
	print(f"ratio drill / restore: {drill_s / restore_s:.2f} (goal <= 1.10)")
	print(f"rollback fast path, {len(tables)} tables from the same dump: {fast_s:.2f} s")
	print(f"ratio fast path / full restore: {fast_s / restore_s:.2f} (goal <= 0.20)")


if __name__ == "__main__":
	main(sys.argv[1], sys.argv[2])
