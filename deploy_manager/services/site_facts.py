"""What the checks look at, read from this site: its config, its database and its bench.

Everything is read here, in the calling thread (frappe's connection is not shared with the checks'
threads). A fact that cannot be read goes in as its exception, so that its check says why; the
config-only facts need no database, so the suite runs even when the database is down. Secrets are
wrapped in `checks.Secret`, which no repr, and so no traceback with locals, shows.
"""

import os
import socket
from datetime import datetime
from urllib.parse import urlsplit

import frappe
from frappe.utils import (
	add_to_date,
	cint,
	flt,
	get_bench_id,
	get_bench_path,
	get_system_timezone,
	now_datetime,
	time_diff_in_seconds,
)
from frappe.utils.background_jobs import get_redis_conn
from frappe.utils.scheduler import schedule_jobs_based_on_activity
from rq.job import Job, JobStatus

from deploy_manager.core import checks
from deploy_manager.core.checks.flows import Flow
from deploy_manager.core.checks.performance import Endpoint
from deploy_manager.core.clock import SiteClock
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_secret,
	get_settings,
)
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services.site_state import pending_patches

# An error title seen in this many days before the window is not new.
KNOWN_ERRORS_DAYS = 14
# Without a deployment, or after an old one, errors are judged over at most this trailing window.
ERROR_WINDOW_HOURS = 24
# Seconds Frappe adds at random to a Long job's next run.
LONG_JITTER = 600
# Passwords a fresh site or a careless admin leaves on Administrator.
DEFAULT_PASSWORDS = ("admin", "administrator", "password", "frappe", "changeme", "123456")
PING = Endpoint("/api/method/ping")


def settings() -> frappe._dict:
	"""Settings as the checks read them: with the API secret, wrapped (see the module's docstring)."""
	values = get_settings()
	try:
		values.api_secret = checks.Secret(get_secret("api_secret"))
	except Exception:
		values.api_secret = ""  # the database is down: the flows go without the API user
	return values


def key_flows(config: frappe._dict) -> list[Flow]:
	return [
		Flow(
			row.path,
			row.method or "GET",
			cint(row.expected_status) or 200,
			row.expected_text or "",
			flt(row.time_limit) or 5.0,
			bool(row.as_api_user),
			bool(row.allow_post_as_api_user),
		)
		for row in config.key_flows
	]


def endpoints(flows: list[Flow]) -> list[Endpoint]:
	"""What performance times: ping and every key flow that only reads."""
	return [PING, *(Endpoint(f.path, f.method, f.as_api_user) for f in flows if f.method != "POST")]


def outside_target(deployment: str | None, config: frappe._dict) -> checks.Target:
	"""What the checks that look at the site from outside need: its address and services, read from
	config; the baselines of its response times; where its assets are."""
	url, host = site_url(config)
	extra = {
		"db": {
			"host": frappe.conf.db_host or "127.0.0.1",
			"port": frappe.conf.db_port or 3306,
			"user": frappe.conf.db_user or frappe.conf.db_name,
			"password": checks.Secret(frappe.conf.db_password or ""),
			"database": frappe.conf.db_name,
			"unix_socket": frappe.conf.db_socket,
		},
		"redis": _redis_urls(),
		"assets": _facts(_assets_facts),
		"network": {
			"host": urlsplit(url).hostname if not host else host,
			"external_urls": _lines(config.external_urls),
		},
		"performance": _facts(lambda: _performance_facts(deployment, config)),
	}
	if config.api_key and config.api_secret:
		extra["api_token"] = checks.Secret(f"{config.api_key}:{config.api_secret}")
	return checks.Target(url=url, host=host, extra=extra)


def inside_facts(deployment: str | None, config: frappe._dict) -> dict:
	"""What the checks of the site's own state need, mostly from its database."""
	since = _facts(lambda: _since(deployment))
	window_start = since if isinstance(since, datetime) else None
	return {
		"queue": _facts(lambda: _queue_facts(window_start)),
		"paths": [
			os.path.abspath(path)
			for path in (frappe.get_site_path(), _backup_folder())
			if os.path.isdir(path)
		],
		"error_logs": _facts(lambda: _error_log_facts(window_start)),
		"scheduler": _facts(lambda: _scheduler_facts(window_start, config)),
		"migrations": _facts(lambda: _migration_facts(deployment)),
		"security": _facts(lambda: _security_facts(config)),
		"backups": _facts(lambda: _backup_facts(config)),
	}


def site_url(config: frappe._dict) -> tuple[str, str]:
	"""(base URL, Host header): Settings, else the site's host_name, else the bench's web port."""
	configured = config.site_url or frappe.conf.host_name
	if configured:
		return (configured if "://" in configured else f"http://{configured}"), ""
	return f"http://127.0.0.1:{frappe.conf.webserver_port or 8000}", frappe.local.site


def is_production(config: frappe._dict) -> bool:
	return (config.default_environment or "Production") == "Production"


def _facts(gather):
	try:
		return gather()
	except Exception as e:
		return e


def _lines(text: str | None) -> list[str]:
	return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _redis_urls() -> dict:
	urls = {name: frappe.conf[name] for name in ("redis_cache", "redis_queue") if frappe.conf.get(name)}
	if "redis_queue" in urls and frappe.conf.use_rq_auth:
		urls["redis_queue"] = {"url": urls["redis_queue"], **_rq_credentials()}
	return urls


def _rq_credentials() -> dict:
	"""Frappe's `use_rq_auth`: the user and password its workers connect to the queue with."""
	if not frappe.conf.use_rq_auth:
		return {"username": None, "password": None}
	return {
		"username": frappe.conf.rq_username or get_bench_id(),
		"password": checks.Secret(frappe.conf.rq_password or ""),
	}


def current_deployment() -> str | None:
	"""The deployment whose code runs now: not one that failed before the database and was undone."""
	finished = frappe.get_all(
		"Deployment",
		filters={"finished_at": ("is", "set"), "code_put_back": 0},
		order_by="finished_at desc",
		limit=1,
		pluck="name",
	)
	return finished[0] if finished else None


def _since(deployment: str | None) -> datetime:
	"""Start of the window judged: the deployment's end, at most a day back (the Error Log and the
	job registries forget older entries, and against them everything would look new)."""
	earliest = add_to_date(now_datetime(), hours=-ERROR_WINDOW_HOURS)
	deployment = deployment or current_deployment()
	if not deployment:
		return earliest
	started, finished = frappe.db.get_value("Deployment", deployment, ["started_at", "finished_at"])
	return max(finished or started, earliest)


def _window(since: datetime | None) -> tuple[datetime, float]:
	since = since or add_to_date(now_datetime(), hours=-ERROR_WINDOW_HOURS)
	return since, max(60.0, time_diff_in_seconds(now_datetime(), since))


def _counts(doctype: str, field: str, filters: list) -> dict[str, int]:
	rows = frappe.get_all(doctype, filters=filters, fields=[field, "count(*) as n"], group_by=field)
	return {row[field]: row.n for row in rows}


def _error_log_facts(since: datetime | None) -> dict:
	"""Error Log entries since the deployment against an equal window before it; titles not seen in
	the weeks before are new."""
	since, window = _window(since)
	after = _counts("Error Log", "method", [["creation", ">=", since]])
	before = _counts(
		"Error Log",
		"method",
		[["creation", ">=", add_to_date(since, seconds=-window)], ["creation", "<", since]],
	)
	known = _counts(
		"Error Log",
		"method",
		[["creation", ">=", add_to_date(since, days=-KNOWN_ERRORS_DAYS)], ["creation", "<", since]],
	)
	return {
		"after": sum(after.values()),
		"before": sum(before.values()),
		"window_minutes": window / 60,
		"new_titles": sorted(set(after) - set(known)),
	}


def _scheduler_facts(since: datetime | None, config: frappe._dict) -> dict:
	since, window = _window(since)
	job_types = [
		frappe.get_doc({"doctype": "Scheduled Job Type", **row})
		for row in frappe.get_all(
			"Scheduled Job Type",
			filters={"stopped": 0},
			fields=["name", "method", "frequency", "cron_format", "last_execution", "creation"],
		)
	]
	# Frappe's own ids for the jobs its scheduler enqueues: one queued or running is not missed.
	ids = [f"{frappe.local.site}::{job.rq_job_id}" for job in job_types]
	in_queue = Job.fetch_many(ids, connection=get_redis_conn()) if ids else []
	failed = [["status", "=", "Failed"]]
	return {
		"site": frappe.local.site,
		"enabled": not frappe.conf.disable_scheduler
		and bool(cint(frappe.db.get_single_value("System Settings", "enable_scheduler", cache=False))),
		"paused": bool(frappe.conf.pause_scheduler),
		"production": is_production(config),
		# As the scheduler decides it, cached an hour as it is there.
		"dormant": not schedule_jobs_based_on_activity(),
		"dormant_days": cint(frappe.db.get_single_value("System Settings", "dormant_days")) or 4,
		"now": now_datetime(),
		"resumed_at": reopened_at(),
		"tick": cint(frappe.get_conf().scheduler_tick_interval) or 60,
		"jobs": [
			{
				"method": job.method,
				# Frappe's scheduler draws its own random delay for Long jobs: `jitter` allows for it.
				"due": job.get_next_execution(),
				"jitter": LONG_JITTER if "Long" in job.frequency else 0,
				"queued": bool(rq_job) and rq_job.get_status() in (JobStatus.QUEUED, JobStatus.STARTED),
				"queued_at": site_clock().from_utc(rq_job.enqueued_at)
				if rq_job and rq_job.enqueued_at
				else None,
				"ran_at": job.last_execution,
			}
			for job, rq_job in zip(job_types, in_queue, strict=True)
		],
		"failed_since": _counts(
			"Scheduled Job Log", "scheduled_job_type", [*failed, ["creation", ">=", since]]
		),
		"failed_before": _counts(
			"Scheduled Job Log",
			"scheduled_job_type",
			[*failed, ["creation", ">=", add_to_date(since, seconds=-window)], ["creation", "<", since]],
		),
	}


def reopened_at() -> datetime:
	"""When the site was last opened, resumed or restored: nothing scheduled could run before. The
	flags live in the site's and the bench's config files (bench update, set-maintenance-mode and
	scheduler resume write them), and a deployment's end is when its migrate or restore finished."""
	written = [
		os.path.getmtime(path)
		for path in (
			frappe.get_site_path("site_config.json"),
			frappe.get_site_path("..", "common_site_config.json"),
		)
		if os.path.exists(path)
	]
	moments = [site_clock().from_timestamp(max(written))] if written else []
	if deployment := current_deployment():
		moments.append(frappe.db.get_value("Deployment", deployment, "finished_at"))
	return max(filter(None, moments), default=add_to_date(now_datetime(), days=-1))


def site_clock() -> SiteClock:
	"""The site's clock (core/clock.py): every time from a file, RQ or the machine goes through it."""
	return SiteClock(get_system_timezone())


def _queue_facts(since: datetime | None) -> dict:
	from frappe.utils.background_jobs import generate_qname, get_queues_timeout

	return {
		"url": frappe.conf.redis_queue,
		**_rq_credentials(),
		"queues": {name: generate_qname(name) for name in get_queues_timeout()},
		"site": frappe.local.site,
		# The job registries keep UTC times.
		"since": site_clock().to_utc(since) if since else None,
		"resumed_at": site_clock().to_utc(reopened_at()),
		"hostname": socket.gethostname(),
	}


def _migration_facts(deployment: str | None) -> dict:
	deployment = deployment or current_deployment()
	skipped, failed, lock_waits = [], "", []
	if deployment:
		doc = frappe.get_doc("Deployment", deployment)
		skipped = [p.patch for p in doc.patches if p.status == "Skipped"]
		lock_waits = (doc.lock_waits or "").splitlines()
		if doc.status == lifecycle.FAILED:
			failed = doc.failure_reason or "the migrate failed"
	return {
		"pending": pending_patches(),
		"skipped": skipped,
		"failed": failed,
		"lock_waits": lock_waits,
		"apps": [frappe.get_app_path(app) for app in frappe.get_installed_apps()],
		"hashes": dict(frappe.get_all("DocType", fields=["name", "migration_hash"], as_list=True)),
	}


def _security_facts(config: frappe._dict) -> dict:
	from frappe.utils.password import passlibctx

	# The stored hash, verified here: Frappe's check_password may rehash and so write.
	stored = frappe.db.sql(
		"""select password from `__Auth` where doctype = 'User' and name = 'Administrator'
		and fieldname = 'password' and encrypted = 0""",
		pluck=True,
	)

	return {
		"production": is_production(config),
		"session_expiry": frappe.db.get_single_value("System Settings", "session_expiry", cache=False) or "",
		"deny_multiple_sessions": bool(
			cint(frappe.db.get_single_value("System Settings", "deny_multiple_sessions", cache=False))
		),
		"require_single_session": bool(config.require_single_session),
		"developer_mode": bool(frappe.conf.developer_mode),
		"allow_tests": bool(frappe.conf.allow_tests),
		"default_admin_password": next(
			(p for p in DEFAULT_PASSWORDS if stored and passlibctx.verify(p, stored[0])), ""
		),
	}


def _backup_folder() -> str:
	return frappe.get_site_path("private", "backups")


def _backup_facts(config: frappe._dict) -> dict:
	# Records dated ahead of now were taken before the site's time zone moved west: they would hide
	# every real age, so they are counted apart.
	ahead = add_to_date(now_datetime(), minutes=5)
	verified = {"status": "Verified"}
	newest = frappe.get_all(
		"Backup Record", filters={**verified, "taken_at": ("<=", ahead)}, fields=["max(taken_at) as taken_at"]
	)
	return {
		"dated_ahead": frappe.db.count("Backup Record", {**verified, "taken_at": (">", ahead)}),
		"missing": frappe.get_all(
			"Backup Record",
			filters={"status": "Missing", "taken_at": (">=", add_to_date(now_datetime(), days=-30))},
			pluck="name",
			order_by="taken_at desc",
		),
		"folder": os.path.abspath(_backup_folder()),
		"newest_record": newest[0].taken_at if newest else None,
		"max_age_hours": flt(config.backup_max_age),
		"now": now_datetime(),
		"time_zone": get_system_timezone(),
	}


def _assets_facts() -> dict:
	return {
		"root": os.path.join(get_bench_path(), "sites", "assets"),
		"apps": {app: frappe.get_app_path(app, "public") for app in frappe.get_installed_apps()},
	}


def _performance_facts(deployment: str | None, config: frappe._dict) -> dict:
	return {
		"samples": cint(config.performance_samples),
		"threshold": flt(config.performance_threshold) / 100,
		"baselines": baselines(deployment),
	}


def baselines(deployment: str | None) -> dict[str, float]:
	"""Check name -> the metric it measured in the baseline run: the last pre-deploy verification
	before this deployment started, else the last check of the last Confirmed deployment."""
	check = None
	if deployment:
		started = frappe.db.get_value("Deployment", deployment, "started_at")
		check = _latest_check([["phase", "=", "Pre-deploy"], ["finished_at", "<=", started]])
	if not check:
		confirmed = frappe.get_all(
			"Deployment",
			filters=[["status", "=", lifecycle.CONFIRMED], ["name", "!=", deployment or ""]],
			order_by="finished_at desc",
			limit=1,
			pluck="name",
		)
		if confirmed:
			check = _latest_check(
				[["deployment", "=", confirmed[0]], ["phase", "in", ("Post-deploy", "Monitoring")]]
			)
	if not check:
		return {}
	rows = frappe.get_all(
		"Verification Result",
		filters={"parent": check, "parenttype": "Verification Check", "metric": (">", 0)},
		fields=["check_name", "metric"],
	)
	return {row.check_name: row.metric for row in rows}


def _latest_check(filters: list) -> str | None:
	found = frappe.get_all(
		"Verification Check", filters=filters, order_by="finished_at desc", limit=1, pluck="name"
	)
	return found[0] if found else None
