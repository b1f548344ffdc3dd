"""The preflight: gather what the guide's PREPARE checklist looks at, let core.preflight judge it,
and store the outcome as a Verification Check (phase Preflight), overrides and their reasons included."""

from datetime import datetime, timezone

import frappe
from frappe.utils import add_to_date, get_system_timezone, now_datetime, time_diff_in_seconds

from deploy_manager.core import environment as env
from deploy_manager.core import gitrepo
from deploy_manager.core import preflight as core
from deploy_manager.core.plan import Move
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import bench_lock, rollback
from deploy_manager.services.site_state import repo

STATUSES = {core.PASS: "Pass", core.WARN: "Warn", core.BLOCK: "Block"}


def run(
	moves: list[Move], override_reason: str = "", deploying: bool = False, now: datetime | None = None
) -> tuple[core.Decision, object]:
	"""Judge the checklist for `moves` (app, current commit, target commit) and store it. `deploying`:
	called by the deploy, which holds the bench's change lock and takes its own backup next."""
	started = now_datetime()
	settings = get_settings()
	environment = settings.default_environment
	changing = [m for m in moves if m.current != m.target]
	evidence = _evidence(changing)
	findings = [
		*_code(changing, evidence),
		core.environment_keys(_missing_keys(settings), _secrets()),
		_safety(settings) if not deploying else _safety_by_deploy(),
		*core.one_change(_running(deploying), [m.app for m in changing]),
		core.freeze(
			now or datetime.now(timezone.utc),
			get_system_timezone(),
			environment,
			settings.friday_freeze,
			[_window(row) for row in settings.freeze_windows],
		),
		core.staging_first(
			environment, {m.app: m.target for m in changing}, _staging_confirmed(changing, evidence)
		),
		core.clean_trees([m.app for m in changing if gitrepo.read_state(repo(m.app)).dirty]),
	]
	rules = {row.item: row.blocks_in for row in settings.preflight_rules}
	decision = core.judge(findings, environment, rules, override_reason)
	return decision, _store(decision, started)


def _code(changing: list[Move], evidence: dict) -> list[core.Finding]:
	found = []
	for move in changing:
		posted = {kind: row.result for kind, row in evidence.get((move.app, move.target), {}).items()}
		found.append(core.code_quality(move.app, move.target, posted))
		has_assets = gitrepo.has_path(repo(move.app), move.target, f"{move.app}/public")
		found.append(core.build(move.app, move.target, posted, has_assets))
	return found


def _evidence(changing: list[Move]) -> dict[tuple[str, str], dict]:
	"""(app, commit) -> kind -> the latest evidence of that kind posted for it."""
	found = {}
	for row in frappe.get_all(
		"Deploy Evidence",
		filters={"commit": ("in", [m.target for m in changing] or [""])},
		fields=["app", "commit", "kind", "result", "reported_by_site", "reason"],
		order_by="creation asc",
	):
		found.setdefault((row.app, row.commit), {})[row.kind] = row
	return found


def _staging_confirmed(changing: list[Move], evidence: dict) -> dict[str, str]:
	"""app -> where its target commit was Confirmed on Staging (the latest such evidence passed)."""
	found = {}
	for move in changing:
		row = evidence.get((move.app, move.target), {}).get("Staging Confirmed")
		if row and row.result == "Passed":
			found[move.app] = row.reported_by_site or f"by hand ({row.reason})"
	return found


def _missing_keys(settings) -> list[str]:
	wanted = (settings.required_config_keys or "").split()
	return [key for key in wanted if frappe.conf.get(key) in (None, "")]


def _secrets() -> dict[str, bool]:
	# Frappe makes the key when it first encrypts something; missing once passwords are stored
	# encrypted, they cannot be read any more.
	encrypted = frappe.db.sql("select count(*) from `__Auth` where encrypted = 1")[0][0]
	secrets = {"encryption_key": bool(frappe.conf.encryption_key) or not encrypted}
	if frappe.get_system_settings("encrypt_backup"):
		secrets["backup_encryption_key"] = bool(frappe.conf.backup_encryption_key)
	return secrets


def _safety(settings) -> core.Finding:
	newest = frappe.get_all(
		"Backup Record",
		filters={"status": "Verified"},
		fields=["name", "taken_at"],
		order_by="taken_at desc",
		limit=1,
	)
	age = time_diff_in_seconds(now_datetime(), newest[0].taken_at) / 3600 if newest else None
	restorable = sum(1 for c in rollback.candidates() if c.restorable)
	return core.safety(newest[0].name if newest else None, age, settings.backup_max_age or 24, restorable)


def _safety_by_deploy() -> core.Finding:
	return core.Finding(
		core.SAFETY,
		core.SAFETY,
		True,
		"the deploy takes and verifies a backup before anything changes: it is the rollback point",
	)


def _running(deploying: bool) -> list[str]:
	"""Deployments in progress: another deploy or rollback on this bench, a migrate of this site."""
	running = [] if deploying else [r for r in [bench_lock.running_change()] if r]
	since = add_to_date(now_datetime(), hours=-12)
	running += [
		f"{d.name} ({d.source}, pid {d.pid} on {d.host})"
		for d in frappe.get_all(
			"Deployment",
			filters={"status": lifecycle.IN_PROGRESS, "started_at": (">=", since)},
			fields=["name", "source", "pid", "host"],
		)
	]
	return running


def _window(row) -> core.Window:
	return core.Window(
		row.label,
		frozenset([row.environment]) if row.environment else frozenset(),
		frappe.utils.getdate(row.from_date) if row.from_date else None,
		frappe.utils.getdate(row.to_date) if row.to_date else None,
		row.weekday or "",
		core.clock(row.from_time),
		core.clock(row.to_time),
	)


def _store(decision: core.Decision, started):
	return frappe.get_doc(
		{
			"doctype": "Verification Check",
			"site": frappe.local.site,
			"phase": "Preflight",
			"status": "Completed",
			"verdict_reason": decision.summary(),
			"override_reason": f"{decision.override_reason} ({env.operator()})"
			if decision.override_reason and decision.blocks
			else "",
			"started_at": started,
			"finished_at": now_datetime(),
			"results": [
				{
					"check_name": f.name,
					"category": f.item,
					"status": STATUSES[f.status],
					"message": f.message,
				}
				for f in decision.findings
			],
		}
	).insert(ignore_permissions=True)


def render(decision: core.Decision, check_name: str) -> str:
	width = max((len(f.name) for f in decision.findings), default=10)
	lines = [f"{f.status.upper():5}  {f.name:{width}}  {f.message}" for f in decision.findings]
	lines += ["", f"{decision.summary()} ({check_name})"]
	return "\n".join(lines)


def as_dict(decision: core.Decision, check_name: str) -> dict:
	return {
		"preflight": check_name,
		"go": decision.go,
		"summary": decision.summary(),
		"override_reason": decision.override_reason,
		"items": [
			{"item": f.item, "name": f.name, "status": f.status, "message": f.message}
			for f in decision.findings
		],
	}
