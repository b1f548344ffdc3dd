"""Against the real Redis of this machine (db 13, shared) and real rq worker processes."""

import os
import signal
import socket
import subprocess
import sys
import time
import types
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from rq import Queue
from test_checks_http import free_port

from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.workers import background_jobs, workers

URL = "redis://127.0.0.1:6379/13"
SITE = "shop.example.com"


class Bench:
	"""One bench's queues on the shared Redis: its own id in every key, so it can clean up after itself."""

	def __init__(self, logs: Path):
		self.id = f"dm-test-{uuid.uuid4().hex[:12]}"
		self.redis = redis.Redis.from_url(URL)
		self.queues = {short: f"{self.id}:{short}" for short in ("default", "short", "long")}
		self.logs = logs
		self.processes: dict[str, subprocess.Popen] = {}
		self.enqueued = 0

	def start_workers(self, **queues_by_worker: list[str]):
		for name, shorts in queues_by_worker.items():
			# SimpleWorker runs jobs in its own process: killing it leaves no work-horse writing to Redis.
			command = [sys.executable, "-m", "rq.cli", "worker", "-u", URL, "--name", f"{self.id}-{name}"]
			command += ["-w", "rq.worker.SimpleWorker", *(self.queues[short] for short in shorts)]
			with open(self.logs / f"{name}.log", "wb") as log:
				self.processes[name] = subprocess.Popen(
					command,
					env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
					stdout=log,
					stderr=subprocess.STDOUT,
				)
		for name in queues_by_worker:
			self.wait_for(lambda n=name: self.redis.exists(f"rq:worker:{self.id}-{n}"), f"worker {name}")

	def kill(self, name: str):
		process = self.processes[name]
		process.send_signal(signal.SIGKILL)
		# Reaped, as a supervisor does: a zombie's pid still answers.
		process.wait()

	def target(self, **facts) -> Target:
		queue = {
			"url": URL,
			"username": None,
			"password": None,
			"queues": self.queues,
			"site": SITE,
			"since": None,
			"hostname": socket.gethostname(),
		}
		return Target(extra={"queue": {**queue, **facts}}, request_timeout=2)

	def enqueue(self, short: str, site=SITE, job_name="shop.tasks.sync_orders", method=None, **kwargs):
		"""A job as Frappe enqueues one."""
		self.enqueued += 1
		job_kwargs = {
			"site": site,
			"user": "Administrator",
			"method": method or job_name,
			"event": None,
			"job_name": job_name,
			"kwargs": kwargs,
			"is_async": True,
			"retry": 0,
		}
		return Queue(self.queues[short], connection=self.redis).enqueue_call(
			"worker_jobs.execute_job", kwargs=job_kwargs, job_id=f"{self.id}-job-{self.enqueued}"
		)

	def failed(self) -> int:
		return sum(self.redis.zcard(f"rq:failed:{name}") for name in self.queues.values())

	def wait_for(self, condition, what: str):
		deadline = time.monotonic() + 10
		while not condition():
			if time.monotonic() > deadline:
				logs = "\n".join(p.read_text()[-2000:] for p in self.logs.glob("*.log"))
				raise TimeoutError(f"{what} did not happen in 10 s\n{logs}")
			time.sleep(0.05)

	def close(self):
		for process in self.processes.values():
			process.kill()
			process.wait()
		keys = list(self.redis.scan_iter(f"*{self.id}*"))
		if keys:
			self.redis.delete(*keys)
		for registry in ("rq:workers", "rq:queues"):
			ours = [member for member in self.redis.smembers(registry) if self.id.encode() in member]
			if ours:
				self.redis.srem(registry, *ours)
		self.redis.close()


@pytest.fixture
def bench(tmp_path: Path):
	bench = Bench(tmp_path)
	try:
		yield bench
	finally:
		bench.close()


def utcnow() -> datetime:
	return datetime.now(timezone.utc).replace(tzinfo=None)


def test_live_workers_on_every_queue_pass_and_a_killed_one_fails_at_once(bench):
	bench.start_workers(both=["default", "short"], slow=["long"])
	result = workers(bench.target())
	assert (result.status, result.message) == (PASS, "2 workers on default, short, long")
	assert result.value == "2 live of 2 registered"
	bench.kill("slow")
	result = workers(bench.target())
	assert (result.status, result.message) == (FAIL, "no live worker on long (1 dead registration seen)")


def test_a_queue_nobody_listens_on_fails(bench):
	bench.start_workers(both=["default", "short"])
	result = workers(bench.target())
	assert (result.status, result.message) == (FAIL, "no live worker on long")


def test_a_worker_on_another_machine_is_judged_by_its_heartbeat(bench):
	bench.start_workers(all=["default", "short", "long"])
	bench.kill("all")
	# From another machine its pid says nothing: until its heartbeat is stale it counts as live.
	assert workers(bench.target(hostname="elsewhere")).status == PASS
	time.sleep(1.1)
	result = workers(bench.target(hostname="elsewhere", stale_after=1))
	assert result.status == FAIL
	assert result.message == "no live worker on default, short, long (1 dead registration seen)"


def test_redis_down_fails_within_the_timeout(bench):
	target = bench.target(url=f"redis://127.0.0.1:{free_port()}/13")
	started = time.monotonic()
	result = workers(target)
	assert result.status == FAIL
	assert result.message.startswith("the queue's Redis does not answer: Error 111")
	assert background_jobs(target).status == ERROR
	assert time.monotonic() - started < 2 * target.request_timeout


def test_failed_jobs_of_this_site_since_the_deploy_warn_by_name(bench):
	bench.start_workers(all=["default", "short", "long"])
	bench.enqueue("default", job_name="shop.tasks.before_the_deploy")
	bench.wait_for(lambda: bench.failed() == 1, "the first failure")
	since = utcnow()
	assert background_jobs(bench.target(since=since)).message == "0 queued, none failed since the deploy"

	bench.enqueue("default")
	bench.enqueue("short")
	bench.enqueue("long", site="other.example.com", job_name="other.tasks.sync")
	# A job whose function the deploy removed: neither the worker nor the check can import it.
	gone = types.ModuleType("dm_gone_module")
	exec("def vanished(): pass", gone.__dict__)
	sys.modules[gone.__name__] = gone
	try:
		bench.enqueue("long", job_name=None, method=gone.vanished)
	finally:
		del sys.modules[gone.__name__]
	bench.wait_for(lambda: bench.failed() == 5, "four more failures")

	result = background_jobs(bench.target(since=since))
	assert result.status == WARN
	assert result.message == (
		"3 failed jobs since the deploy: shop.tasks.sync_orders (2), dm_gone_module.vanished (1)"
	)
	assert result.value == "3 failed, 0 queued"
	# Without a deploy time, the last 24 hours.
	assert background_jobs(bench.target()).message.startswith("4 failed jobs in the last 24 hours: ")


def test_a_failed_job_id_queued_again_is_no_failure(bench):
	# As Frappe's scheduler does: the same id for each run of a scheduled job.
	bench.start_workers(all=["default", "short", "long"])
	since = utcnow()
	job = bench.enqueue("default", job_name="frappe.sessions.clear_expired_sessions")
	bench.wait_for(lambda: bench.failed() == 1, "the failure")
	assert background_jobs(bench.target(since=since)).status == WARN
	bench.kill("all")
	Queue(bench.queues["default"], connection=bench.redis).enqueue_call(
		"worker_jobs.execute_job", kwargs=job.kwargs, job_id=job.id
	)
	# Still listed by the registry, but the job under that id is queued, not failed.
	assert bench.failed() == 1
	result = background_jobs(bench.target(since=since))
	assert result.message == "1 queued, none failed since the deploy"


def test_an_unreadable_failed_job_is_reported_rather_than_skipped(bench):
	job = bench.enqueue("default")
	Queue(bench.queues["default"], connection=bench.redis).remove(job)
	job.set_status("failed")
	job.failed_job_registry.add(job)
	bench.redis.hset(job.key, "data", b"not a pickle")
	result = background_jobs(bench.target())
	assert (result.status, result.message) == (WARN, "1 failed job in the last 24 hours: unreadable job (1)")


def test_a_backlog_over_the_threshold_warns(bench):
	for _ in range(4):
		bench.enqueue("long")
	result = background_jobs(bench.target(backlog_warn=3))
	assert (result.status, result.message) == (WARN, "4 jobs queued (more than 3)")
	# Nobody listens on it: how long they wait is the Workers check's business.
	assert background_jobs(bench.target(wait_warn=1)).status == PASS


def test_a_job_waiting_while_the_workers_are_busy_warns(bench):
	bench.start_workers(busy=["default"])
	bench.enqueue("default", job_name="shop.tasks.slow", method="sleep", seconds=10)
	bench.wait_for(
		lambda: bench.redis.zcard(f"rq:wip:{bench.queues['default']}") == 1, "the slow job to start"
	)
	bench.enqueue("default")
	time.sleep(1.1)
	result = background_jobs(bench.target(wait_warn=1))
	assert (result.status, result.message) == (WARN, "a job in default has waited 1 s for a worker")
	assert background_jobs(bench.target()).status == PASS


def test_missing_or_unreadable_facts():
	for check in (workers, background_jobs):
		assert check(Target()).status == WARN
		result = check(Target(extra={"queue": RuntimeError("no common_site_config.json")}))
		assert (result.status, result.message) == (
			ERROR,
			"the queue settings could not be read: no common_site_config.json",
		)


def test_no_queues_to_check_is_a_warning(bench):
	assert workers(bench.target(queues={})).status == WARN
