"""The services the site depends on answer: its database and its Redis instances.

The guide's "Network / Dependencies" row. Connection settings come in `Target.extra`:
`db` (host, port, user, password, database, unix_socket) and `redis` (name -> URL, or name ->
{"url", "username", "password"} for a Redis with users, as Frappe's `use_rq_auth` makes the queue's).
"""

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pymysql
import redis

from deploy_manager.core.checks import FAIL, OUTSIDE, PASS, WARN, CheckResult, Target, register

# Above this a round trip is worth a warning: a healthy local database answers in well under 10 ms.
SLOW_ROUND_TRIP_MS = 100


@register(
	"Database",
	"dependencies",
	"service_down",
	looks=OUTSIDE,
	fails_when="the site's database (TCP or `db_socket`) refuses or does not answer "
	f"(warns above {SLOW_ROUND_TRIP_MS} ms)",
)
def database(target: Target) -> CheckResult:
	db = target.extra.get("db") or {}
	started = time.monotonic()
	try:
		connection = pymysql.connect(
			host=db.get("host") or "127.0.0.1",
			port=int(db.get("port") or 3306),
			user=db.get("user"),
			password=db.get("password") or "",
			database=db.get("database"),
			# A site with db_socket talks to the database over it, not over TCP.
			unix_socket=db.get("unix_socket") or None,
			connect_timeout=target.request_timeout,
			read_timeout=target.request_timeout,
		)
	except pymysql.MySQLError as e:
		return CheckResult(FAIL, f"database does not answer: {_mysql_error(e)}")
	try:
		with connection.cursor() as cursor:
			cursor.execute("SELECT 1")
			cursor.fetchone()
	finally:
		connection.close()
	took = (time.monotonic() - started) * 1000
	status = WARN if took > SLOW_ROUND_TRIP_MS else PASS
	return CheckResult(
		status,
		f"database answers in {took:.0f} ms",
		value=f"{took:.0f} ms",
		threshold=f"{SLOW_ROUND_TRIP_MS} ms",
	)


@register(
	"Redis",
	"dependencies",
	"critical",
	looks=OUTSIDE,
	fails_when="redis_cache or redis_queue (with `use_rq_auth` credentials) does not answer; pinged at once",
)
def redis_instances(target: Target) -> CheckResult:
	urls = target.extra.get("redis") or {}
	if not urls:
		return CheckResult(WARN, "no Redis configured for this site")
	# At once: two instances that hang cost one timeout, not two.
	with ThreadPoolExecutor(len(urls)) as pool:
		answers = dict(
			zip(urls, pool.map(lambda conf: _ping(conf, target.request_timeout), urls.values()), strict=True)
		)
	down = [f"{name} ({answers[name]})" for name in sorted(urls) if answers[name]]
	if down:
		return CheckResult(FAIL, "Redis does not answer: " + ", ".join(down), value=f"{len(down)} down")
	return CheckResult(PASS, f"{', '.join(sorted(urls))} answer", value=f"{len(urls)} up")


@register(
	"Redis kept apart",
	"dependencies",
	"minor",
	looks=OUTSIDE,
	fails_when="warns when redis_cache and redis_queue are one server: `bench build` flushes the cache "
	"server, and with it the queue's jobs and worker registrations",
)
def redis_apart(target: Target) -> CheckResult:
	urls = target.extra.get("redis") or {}
	cache, queue = (_server(urls.get(name)) for name in ("redis_cache", "redis_queue"))
	if not (cache and queue):
		return CheckResult(PASS, "redis_cache or redis_queue is not configured: nothing shared")
	if cache == queue:
		return CheckResult(
			WARN,
			f"redis_cache and redis_queue are one server ({cache}): every `bench build` and cache clear"
			" flushes it, losing queued jobs and worker registrations; give the queue its own server,"
			" as `bench init` does (cache 13000, queue 11000)",
			value=cache,
		)
	return CheckResult(PASS, f"cache on {cache}, queue on {queue}")


def _server(conf: str | dict | None) -> str:
	"""host:port (or the socket path) of a Redis URL: its database number does not part two clients,
	since a flush empties every database of the server."""
	if not conf:
		return ""
	url = urlsplit(conf if isinstance(conf, str) else conf["url"])
	if url.scheme == "unix":
		return url.path
	host = url.hostname or "127.0.0.1"
	return f"{'127.0.0.1' if host == 'localhost' else host}:{url.port or 6379}"


def _ping(conf: str | dict, timeout: float) -> str:
	"""'' when that Redis answers, else why not."""
	conf = {"url": conf} if isinstance(conf, str) else conf
	client = redis.Redis.from_url(
		conf["url"],
		username=conf.get("username"),
		password=conf.get("password"),
		socket_timeout=timeout,
		socket_connect_timeout=timeout,
	)
	try:
		client.ping()
		return ""
	except redis.RedisError as e:
		return str(e)
	finally:
		client.close()


def _mysql_error(error: pymysql.MySQLError) -> str:
	# (code, message): the message alone is what an administrator reads.
	return str(error.args[1]) if len(error.args) > 1 else str(error)
