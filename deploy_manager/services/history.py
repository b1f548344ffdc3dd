"""Deploy Manager's own records, the history of what happened (this rollback included), kept aside
around a rollback's restore, which would otherwise replace them with the older ones in the backup.

They go into a file beside the site's backups before the restore and back into the database after
it. A rollback killed during its restore leaves the file: once nothing of that rollback runs any
more, the next command puts it back (closing.reopen_abandoned) before the site opens again.
"""

import contextlib
import json
import os

import frappe

from deploy_manager.services import backups
from deploy_manager.services.site_state import OWN_RECORDS, own_naming_series


def path(rollback: str) -> str:
	return os.path.join(backups.folder(""), f"history-{rollback}.json")


@contextlib.contextmanager
def kept_aside(rollback: str):
	"""Inside, the site's database may be replaced; on the way out, whatever happened inside, our
	records are put back and the file removed."""
	kept = path(rollback)
	os.makedirs(os.path.dirname(kept), exist_ok=True)
	# Owner-only: the rows hold what our records hold, and this folder sits beside backups.
	with open(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
		f.write(frappe.as_json(_own_rows()))
	frappe.db.commit()
	try:
		yield
	finally:
		try:
			put_back(rollback)
		except Exception as e:
			raise RuntimeError(f"our records could not be put back ({e}); they are kept in {kept}") from e


def put_back(rollback: str) -> bool:
	"""The records `rollback` kept aside, back in the database (committed), the file removed; False
	when it kept none."""
	kept = path(rollback)
	try:
		with open(kept) as f:
			rows = json.load(f)
	except FileNotFoundError:
		return False
	_put_own_rows_back(rows)
	frappe.db.commit()
	os.remove(kept)
	return True


def _own_rows() -> dict:
	kept = {doctype: frappe.db.sql(f"select * from `tab{doctype}`", as_dict=True) for doctype in OWN_RECORDS}
	# The naming series counters too: restored older, they would hand out names already taken.
	prefixes = own_naming_series()
	kept["Series"] = frappe.db.sql(
		f"select name, current from tabSeries where {' or '.join(['name like %s'] * len(prefixes))}",
		[f"{prefix}%" for prefix in prefixes],
		as_dict=True,
	)
	return kept


def _put_own_rows_back(kept: dict):
	for row in kept.pop("Series"):
		frappe.db.sql(
			"insert into tabSeries (name, current) values (%s, %s) on duplicate key update current = greatest(current, %s)",
			(row["name"], row["current"], row["current"]),
		)
	for doctype, rows in kept.items():
		if not frappe.db.table_exists(doctype):
			# An older backup may predate the table, and its DocType: read from our own files.
			frappe.reload_doc("deploy_manager", "doctype", frappe.scrub(doctype))
		columns = set(frappe.db.get_table_columns(doctype))
		frappe.db.sql(f"delete from `tab{doctype}`")
		for row in rows:
			values = {k: v for k, v in row.items() if k in columns}
			fields = ", ".join(f"`{k}`" for k in values)
			marks = ", ".join(["%s"] * len(values))
			frappe.db.sql(f"insert into `tab{doctype}` ({fields}) values ({marks})", list(values.values()))
