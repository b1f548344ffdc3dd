"""The guide's "No migration errors": patches all run and the database schema matches the code.

The facts come gathered in `Target.extra["migrations"]`: `pending` (patches not run), `skipped`
(patches the deployment skipped), `failed` (why the current deployment failed, else ""),
`lock_waits` (what the lock guard said while its migrate or restore waited for a lock), `apps`
(the installed apps' python package folders, e.g. /bench/apps/frappe/frappe) and `hashes` (DocType
name -> the migration_hash stored in the database). A gathering that failed comes as the exception.

Migrate stores the md5 of each DocType's JSON file in tabDocType.migration_hash and re-imports a
DocType whose file no longer matches (frappe/modules/import_file.py): a mismatch is a schema change
the database has not been given. Saving a DocType in developer mode rewrites its file without the
hash, so a developer's site may show mismatches until its next migrate.
"""

import hashlib
import json
import os

from deploy_manager.core.checks import FAIL, INSIDE, PASS, WARN, CheckResult, Target, gathered, register, some


@register(
	"Migrations",
	"migrations",
	"critical",
	looks=INSIDE,
	fails_when="the deployment failed, patches are pending, or a DocType's JSON differs from the migration "
	"hash in the database (warns on skipped patches and on waits for database locks)",
	timeout=20,
)
def migrations(target: Target) -> CheckResult:
	facts = gathered(target, "migrations", "the migration state")
	if isinstance(facts, CheckResult):
		return facts
	pending, skipped = facts["pending"], facts["skipped"]
	unsynced = out_of_sync(facts["apps"], facts["hashes"] or {})
	problems = []
	if facts["failed"]:
		problems.append((FAIL, f"the deployment's migrate failed: {facts['failed']}"))
	if pending:
		problems.append((FAIL, f"{len(pending)} patch(es) not run: {some(pending)}"))
	if unsynced:
		problems.append((FAIL, f"{len(unsynced)} DocType(s) differ from the database: {some(unsynced)}"))
	if skipped:
		problems.append((WARN, f"{len(skipped)} patch(es) skipped in the deployment: {some(skipped)}"))
	if facts.get("lock_waits") and not facts["failed"]:
		# It finished, but someone held the site's tables: say who, once.
		waits = facts["lock_waits"]
		problems.append(
			(WARN, f"the deployment waited for database locks ({len(waits)} notes): {waits[0][:500]}")
		)
	value = f"{len(pending)} pending, {len(skipped)} skipped, {len(unsynced)} out of sync"
	if not problems:
		return CheckResult(PASS, "all patches run and every DocType matches the database", value)
	status = FAIL if any(status == FAIL for status, _ in problems) else WARN
	return CheckResult(status, "; ".join(text for _, text in problems), value)


def out_of_sync(apps: list[str], hashes: dict[str, str]) -> list[str]:
	"""DocTypes whose JSON differs from what the last migrate stored; those with no hash are not judged."""
	stored_hashes = set(hashes.values())
	unsynced = []
	for path in _doctype_files(apps):
		with open(path, "rb") as f:
			data = f.read()
		# A file some DocType's stored hash matches is that DocType as migrated: no need to parse it.
		if hashlib.md5(data, usedforsecurity=False).hexdigest() in stored_hashes:
			continue
		try:
			doc = json.loads(data)
		except ValueError:
			continue  # migrate cannot import it either, and says so
		if isinstance(doc, dict) and doc.get("doctype") == "DocType" and hashes.get(doc.get("name")):
			unsynced.append(doc["name"])
	return sorted(unsynced)


def _doctype_files(apps: list[str]):
	"""<app package>/<module>/doctype/<folder>/<folder>.json, the files migrate imports DocTypes from."""
	for app in apps:
		with os.scandir(app) as modules:
			doctype_folders = [os.path.join(m.path, "doctype") for m in modules if m.is_dir()]
		for doctypes in filter(os.path.isdir, doctype_folders):
			with os.scandir(doctypes) as folders:
				for folder in folders:
					path = os.path.join(folder.path, folder.name + ".json")
					if folder.is_dir() and os.path.isfile(path):
						yield path
