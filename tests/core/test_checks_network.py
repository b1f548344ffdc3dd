import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime

from http_server import serve

from deploy_manager.core import checks
from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.network import dns, external_services


def free_port() -> int:
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


@contextmanager
def trickling():
	"""A server that answers 200 and then sends its body one byte at a time, never finishing in time."""
	listener = socket.create_server(("127.0.0.1", 0))
	stop = threading.Event()

	def send():
		connection, _ = listener.accept()
		with connection:
			connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
			while not stop.wait(0.05):
				connection.sendall(b".")

	thread = threading.Thread(target=send, daemon=True)
	thread.start()
	try:
		yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
	finally:
		stop.set()
		listener.close()


def network_facts(host="localhost", urls=()):
	return {"network": {"host": host, "external_urls": list(urls)}}


def test_loopback_names_and_addresses_pass_without_a_lookup():
	for host in ("localhost", "dm-test.localhost", "Shop.LOCALHOST."):
		assert dns(Target(extra=network_facts(host))).value == "loopback"
	for host in ("127.0.0.1", "::1"):
		result = dns(Target(extra=network_facts(host)))
		assert (result.status, result.message) == (PASS, f"{host} is an IP address: nothing to look up")


def test_a_name_that_resolves_passes_with_its_addresses():
	# localhost is not looked up: the machine's own name goes through the resolver (/etc/hosts).
	name = socket.gethostname()
	result = dns(Target(extra=network_facts(name)))
	assert result.status == PASS
	assert result.message.startswith(f"{name} resolves to ")


def test_a_name_that_does_not_resolve_fails():
	result = dns(Target(extra=network_facts("no-such-host.invalid")))
	assert result.status == FAIL
	assert result.message.startswith("no-such-host.invalid does not resolve: ")


def test_no_host_name_warns():
	assert dns(Target(extra=network_facts(None))).message == "the site has no host name to resolve"


def test_no_external_service_configured_passes():
	result = external_services(Target(extra=network_facts()))
	assert (result.status, result.message) == (PASS, "none configured")


def test_services_that_answer_pass_even_with_a_client_error():
	with serve({"/ok": (200, "ok"), "/missing": (404, "no"), "/api": (401, "who are you")}) as (_, url):
		urls = [f"{url}/ok", f"{url}/missing", f"{url}/api"]
		result = external_services(Target(extra=network_facts(urls=urls)))
	assert (result.status, result.message, result.value) == (PASS, "all 3 answer", "3 of 3 answer")


def test_services_that_do_not_answer_fail_each_with_why():
	absent = f"http://127.0.0.1:{free_port()}/"
	with serve({"/ok": (200, "ok"), "/broken": (502, "bad gateway")}) as (_, url):
		urls = [f"{url}/ok", f"{url}/broken", absent, "http://no-such-host.invalid/"]
		result = external_services(Target(extra=network_facts(urls=urls)))
	assert result.status == FAIL
	assert result.message == (
		f"not answering: {url}/broken (HTTP 502), {absent} (Connection refused), "
		"http://no-such-host.invalid/ (Name or service not known)"
	)
	assert result.value == "1 of 4 answer"


def test_hanging_services_are_asked_at_once():
	with serve({"/a": 2, "/b": 2, "/c": 2}) as (_, url):
		started = time.monotonic()
		result = external_services(
			Target(request_timeout=0.4, extra=network_facts(urls=[f"{url}/a", f"{url}/b", f"{url}/c"]))
		)
		took = time.monotonic() - started
	assert result.status == FAIL
	assert result.message.count("(no answer within 0.4s)") == 3
	assert took < 1.0, "the services were asked one after another"


def test_a_service_that_never_finishes_is_abandoned_at_the_deadline():
	with trickling() as url:
		started = time.monotonic()
		result = external_services(Target(request_timeout=0.3, extra=network_facts(urls=[url])))
		took = time.monotonic() - started
	assert result.message == f"not answering: {url} (still no complete answer after 0.6s)"
	assert took < 1.5


def test_unreadable_or_missing_facts():
	for check in (dns, external_services):
		result = check(Target(extra={"network": ConnectionError("db down")}))
		assert (result.status, result.message) == (ERROR, "the network settings could not be read: db down")
		assert check(Target()).status == WARN


def test_the_new_checks_run_together_within_their_timeouts(tmp_path):
	suite = [
		c
		for c in checks.suite(checks.OUTSIDE) + checks.suite(checks.INSIDE)
		if c.category in ("scheduler", "migrations", "security", "backups", "network")
	]
	now = datetime.now().replace(microsecond=0)
	with serve({"/slow": 5}) as (_, url):
		target = Target(
			request_timeout=0.3,
			extra={
				"scheduler": {
					"enabled": True,
					"paused": False,
					"production": True,
					"dormant": False,
					"now": now,
					"resumed_at": now,
					"tick": 60,
					"jobs": [],
					"failed_since": {},
					"failed_before": {},
				},
				"migrations": {
					"pending": [],
					"skipped": [],
					"failed": "",
					"apps": [str(tmp_path)],
					"hashes": {},
				},
				"security": {
					"production": True,
					"session_expiry": "08:00",
					"deny_multiple_sessions": True,
					"require_single_session": True,
					"developer_mode": False,
					"allow_tests": False,
					"default_admin_password": "",
				},
				"backups": {
					"folder": str(tmp_path),
					"newest_record": now,
					"max_age_hours": 24,
					"now": now,
					"time_zone": "UTC",
				},
				**network_facts("localhost", [f"{url}/slow"]),
			},
		)
		started = time.monotonic()
		results = checks.run(suite, target)
		took = time.monotonic() - started
	assert {r.name: r.status for r in results} == {
		"Scheduler": PASS,
		"Scheduled jobs": PASS,
		"Migrations": PASS,
		"Security settings": PASS,
		"Backups": PASS,
		"DNS": PASS,
		"External services": FAIL,
	}
	assert all(r.duration < c.timeout for r, c in zip(results, suite, strict=True))
	assert took < 2, "a hanging service held the suite"
