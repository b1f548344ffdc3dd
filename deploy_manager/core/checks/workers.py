"""The guide's "Workers and jobs": a live worker on each queue; the site's jobs neither fail nor pile up.

The facts come gathered in `Target.extra["queue"]`: `url`, `username` and `password` of the bench's queue
Redis; `queues` (short name -> RQ queue name, e.g. "default" -> "<bench_id>:default"); `site`; `since`
(naive UTC: jobs that failed from then on count; None for the last 24 hours); `hostname` (this machine's,
whose workers' pids can be checked); optionally `resumed_at` (naive UTC: when the site was last
opened, before which no job waited for a worker); and optionally `backlog_warn` (jobs queued), `wait_warn` (seconds the
oldest job may wait) and `stale_after` (seconds without a heartbeat). A gathering that failed comes as the
exception itself.
"""

import io
import os
import pickle
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import redis
from rq import Queue, Worker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.worker import WorkerStatus

from deploy_manager.core.checks import (
	ERROR,
	FAIL,
	INSIDE,
	PASS,
	WARN,
	CheckResult,
	Target,
	gathered,
	register,
	some,
)

BACKLOG_WARN = 500
# An idle worker renews its heartbeat about every worker_ttl seconds; rq drops its registration 60 s late.
STALE_AFTER = DEFAULT_WORKER_TTL + 60
WAIT_WARN = 600
# Failed jobs read per queue, newest first: a registry keeps a year of them by default.
FAILED_SCAN = 200
RUN_DOC_METHOD = "frappe.utils.background_jobs.run_doc_method"


@register(
	"Workers",
	"workers",
	"critical",
	looks=INSIDE,
	fails_when="a queue the bench uses (default, short, long and any in `workers`) has no live RQ worker: "
	"registered, heartbeat fresh, and on this host its process alive (a killed worker is seen at once)",
	transient=True,
)
def workers(target: Target) -> CheckResult:
	"""At least one live worker listens on each of the bench's queues."""
	facts = gathered(target, "queue", "the queue settings", plural=True)
	if isinstance(facts, CheckResult):
		return facts
	queues = facts["queues"]
	if not queues:
		return CheckResult(WARN, "no queues given to check")
	heard_after = _utcnow() - timedelta(seconds=facts.get("stale_after") or STALE_AFTER)
	client = _connect(facts, target)
	try:
		registered = Worker.all(connection=client)
	except redis.RedisError as e:
		return CheckResult(FAIL, _redis_failure(e))
	finally:
		client.close()
	wanted = set(queues.values())
	live, not_live = [], Counter()
	for worker in registered:
		if wanted.intersection(worker.queue_names()):
			reason = _why_not_live(worker, facts["hostname"], heard_after)
			if reason:
				not_live[reason] += 1
			else:
				live.append(worker)
	served = {name for worker in live for name in worker.queue_names()}
	unserved = [short for short, name in queues.items() if name not in served]
	value = f"{len(live)} live of {len(live) + not_live.total()} registered"
	if unserved:
		seen = ""
		if not_live:
			kinds = ", ".join(f"{count} {reason}" for reason, count in sorted(not_live.items()))
			seen = f" ({kinds} registration{'' if not_live.total() == 1 else 's'} seen)"
		return CheckResult(FAIL, f"no live worker on {', '.join(unserved)}{seen}", value, "1 per queue")
	return CheckResult(PASS, f"{_plural(len(live), 'worker')} on {', '.join(queues)}", value, "1 per queue")


@register(
	"Background jobs",
	"workers",
	"minor",
	looks=INSIDE,
	fails_when="warns on this site's jobs failed since the deploy (named), a backlog over "
	f"{BACKLOG_WARN}, or a job waiting over {WAIT_WARN // 60} minutes since the site reopened",
	timeout=20,
	transient=True,
)
def background_jobs(target: Target) -> CheckResult:
	"""The site's jobs that failed since the deploy, and jobs piling up in the queues."""
	facts = gathered(target, "queue", "the queue settings", plural=True)
	if isinstance(facts, CheckResult):
		return facts
	since = facts.get("since")
	window = "since the deploy" if since else "in the last 24 hours"
	since = since or _utcnow() - timedelta(days=1)
	backlog_warn = facts.get("backlog_warn") or BACKLOG_WARN
	wait_warn = facts.get("wait_warn") or WAIT_WARN
	client = _connect(facts, target)
	try:
		failed, cut_short = _failed_jobs(client, facts["queues"].values(), facts["site"], since)
		queued, waits = _backlog(client, facts["queues"], facts.get("resumed_at"))
	except redis.RedisError as e:
		return CheckResult(ERROR, _redis_failure(e))
	finally:
		client.close()
	problems = []
	if failed:
		names = [f"{name} ({count})" for name, count in failed.most_common()]
		problems.append(
			f"{'at least ' if cut_short else ''}{_plural(failed.total(), 'failed job')} {window}: {some(names)}"
		)
	if queued > backlog_warn:
		problems.append(f"{_plural(queued, 'job')} queued (more than {backlog_warn})")
	problems += [
		f"a job in {short} has waited {_duration(waited)} for a worker"
		for short, waited in waits.items()
		if waited > wait_warn
	]
	value = f"{failed.total()} failed, {queued} queued"
	if problems:
		return CheckResult(WARN, "; ".join(problems), value, threshold=f"{backlog_warn} queued")
	return CheckResult(
		PASS, f"{queued} queued, none failed {window}", value, threshold=f"{backlog_warn} queued"
	)


def _connect(facts: dict, target: Target) -> redis.Redis:
	return redis.Redis.from_url(
		facts["url"],
		username=facts.get("username"),
		password=facts.get("password"),
		socket_timeout=target.request_timeout,
		socket_connect_timeout=target.request_timeout,
	)


def _redis_failure(error: redis.RedisError) -> str:
	return f"the queue's Redis does not answer: {error}"


def _why_not_live(worker: Worker, hostname: str, heard_after: datetime) -> str:
	"""Why a registered worker takes no jobs, or "" when it does."""
	if worker.get_state() == WorkerStatus.SUSPENDED:
		return "suspended"
	if not worker.last_heartbeat or worker.last_heartbeat < heard_after:
		return "dead"
	# A worker killed by SIGKILL or the OOM killer stays registered for minutes; its pid tells at once.
	if worker.hostname == hostname and worker.pid and not _pid_alive(worker.pid):
		return "dead"
	return ""


def _pid_alive(pid: int) -> bool:
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	except PermissionError:
		return True  # another user's process
	return True


def _failed_jobs(client: redis.Redis, queue_names, site: str, since: datetime) -> tuple[Counter, bool]:
	"""The site's jobs that failed since `since`, by name; and whether more were left unread."""
	failed = Counter()
	cut_short = False
	for queue_name in queue_names:
		# Scored by expiry, that is failure time plus one failure_ttl: the highest are the newest.
		ids = client.zrevrange(FailedJobRegistry(queue_name, connection=client).key, 0, FAILED_SCAN - 1)
		reached_older = False
		for job in Job.fetch_many([i.decode() for i in ids], connection=client):
			# A job id used again (Frappe's scheduled jobs keep theirs) stays in the registry after a
			# failure while its job, queued anew since, is no failure: judged by the job itself.
			if job is None or job.get_status(refresh=False) != JobStatus.FAILED:
				continue
			# A job abandoned by a dead worker has no end time: when it was last seen stands in.
			ended = job.ended_at or job.last_heartbeat or job.started_at or job.enqueued_at or job.created_at
			if ended < since:
				reached_older = True
				continue
			loaded = _load(job)
			if loaded is None:
				# Its site is unknown: better reported than missed.
				failed["unreadable job"] += 1
			elif loaded[1].get("site") == site:
				failed[_job_name(*loaded)] += 1
		cut_short = cut_short or (len(ids) == FAILED_SCAN and not reached_older)
	return failed, cut_short


def _backlog(client: redis.Redis, queues: dict, resumed_at: datetime | None) -> tuple[int, dict[str, float]]:
	"""Jobs queued in all, and per queue with workers, how long its oldest job has waited in seconds:
	since it was queued or since the site reopened, whichever is later (the workers were stopped
	until then, as `bench update` stops them)."""
	queued, waits = 0, {}
	now = _utcnow()
	for short, name in queues.items():
		queue = Queue(name, connection=client)
		count = queue.count
		queued += count
		# Without workers the wait says nothing new: the Workers check fails already.
		if not count or not Worker.count(connection=client, queue=queue):
			continue
		oldest = Job.fetch_many(queue.get_job_ids(0, 1), connection=client)
		if oldest and oldest[0] and oldest[0].enqueued_at:
			waits[short] = (
				now - max(oldest[0].enqueued_at, resumed_at or oldest[0].enqueued_at)
			).total_seconds()
	return queued, waits


class _Missing:
	"""Stands in for a class or function a job refers to that this process cannot import."""

	def __new__(cls, *args, **kwargs):
		return super().__new__(cls)

	def __init__(self, *args, **kwargs):
		pass

	def __setstate__(self, state):
		pass


class _LenientUnpickler(pickle.Unpickler):
	# The jobs that fail after a deploy that removed or broke a module are those worth reporting, and
	# their data refers to it.
	def find_class(self, module: str, name: str):
		try:
			return super().find_class(module, name)
		except Exception:
			return type(name, (_Missing,), {"__module__": module, "__qualname__": name})


def _load(job: Job) -> tuple[str, dict] | None:
	"""The job's function name and keyword arguments, read as rq's default serializer wrote them."""
	try:
		func_name, _instance, _args, kwargs = _LenientUnpickler(io.BytesIO(job.data)).load()
	except Exception:
		return None
	return (func_name, kwargs) if isinstance(kwargs, dict) else None


def _job_name(func_name: str, kwargs: dict) -> str:
	"""As Frappe's RQ Job list names it: a scheduled job by its method, a document's by doctype.method.

	Frappe runs every job as execute_job(site, user, method, event, job_name, kwargs, is_async, retry).
	"""
	inner = kwargs.get("kwargs") if isinstance(kwargs.get("kwargs"), dict) else {}
	name = inner.get("job_type") or kwargs.get("job_name") or kwargs.get("method") or func_name
	if name == RUN_DOC_METHOD and inner.get("doctype") and inner.get("doc_method"):
		return f"{inner['doctype']}.{inner['doc_method']}"
	if callable(name) and hasattr(name, "__qualname__"):
		return f"{name.__module__}.{name.__qualname__}"
	# Older versions named a job enqueued with a function by its repr.
	match = re.fullmatch(r"<function (\S+) at 0x[0-9a-f]+>", str(name))
	return match[1] if match else str(name)


def _plural(count: int, noun: str) -> str:
	return f"{count} {noun}{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
	return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _utcnow() -> datetime:
	# Naive, as rq stores its times.
	return datetime.now(timezone.utc).replace(tzinfo=None)
