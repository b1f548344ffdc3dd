import socket
import time

from http_server import serve

from deploy_manager.core.checks import ERROR, FAIL, PASS, Target, run
from deploy_manager.core.checks.performance import Endpoint, checks_for, percentile, timing

PING = Endpoint("/api/method/ping")


def target(url: str, baseline: float | None = None, samples: int = 5) -> Target:
	baselines = {PING.check_name: baseline} if baseline else {}
	return Target(
		url=url, extra={"performance": {"samples": samples, "threshold": 0.5, "baselines": baselines}}
	)


def test_percentile_is_nearest_rank():
	values = [float(n) for n in range(1, 21)]
	assert (percentile(values, 0.5), percentile(values, 0.95)) == (10.0, 19.0)
	assert percentile([7.0], 0.95) == 7.0


def test_without_baseline_it_measures_and_keeps_the_p50():
	with serve({PING.path: (200, {"message": "pong"})}) as (server, url):
		result = timing(PING, target(url))
	assert result.status == PASS
	assert "no baseline yet" in result.message
	assert result.metric is not None and result.metric < 1000
	# The warm-up request is not counted.
	assert len(server.requests) == 6


def test_more_than_the_threshold_slower_than_the_baseline_fails():
	with serve({PING.path: 0.12}) as (_, url):
		result = timing(PING, target(url, baseline=20.0))
	assert result.status == FAIL
	assert result.baseline == "p50 20 ms"
	assert result.metric >= 120


def test_as_fast_as_the_baseline_passes_and_small_slowdowns_are_noise():
	with serve({PING.path: 0.05}) as (_, url):
		same = timing(PING, target(url, baseline=200.0))
		# 3x slower than a 10 ms baseline, but by less than MIN_SLOWDOWN_MS.
		noise = timing(PING, target(url, baseline=25.0))
	assert same.status == PASS
	assert noise.status == PASS, noise.message


def test_an_endpoint_that_fails_or_is_absent_cannot_be_timed():
	with serve({}) as (_, url):
		assert timing(PING, target(url)).status == ERROR
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		port = s.getsockname()[1]
	result = timing(PING, target(f"http://127.0.0.1:{port}"))
	assert (result.status, result.message) == (ERROR, "could not be timed: ConnectionError")


def test_checks_for_names_each_endpoint():
	with serve({PING.path: (200, {"message": "pong"}), "/app": (200, "ok")}) as (_, url):
		results = run(checks_for([PING, Endpoint("/app")], samples=2), target(url, samples=2))
	assert [(r.name, r.status) for r in results] == [
		("Response time GET /api/method/ping", PASS),
		("Response time GET /app", PASS),
	]


def test_one_slow_request_among_ten_is_not_a_slower_release():
	answered = []

	def slow_second_time():
		# The warm-up is the first request; the first timed one meets a rebuilding cache.
		answered.append(1)
		if len(answered) == 2:
			time.sleep(0.3)
		return (200, {"message": "pong"})

	with serve({PING.path: (200, {"message": "pong"})}) as (_, url):
		baseline = timing(PING, target(url, samples=10)).metric
	with serve({PING.path: slow_second_time}) as (_, url):
		result = timing(PING, target(url, baseline=baseline, samples=10))
	assert result.status == PASS, result.message
	assert result.metric < 100
	assert "p95 3" in result.message
