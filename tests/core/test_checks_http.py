import socket

from http_server import serve

from deploy_manager.core.checks import FAIL, PASS, Target
from deploy_manager.core.checks.http import health, login_page

PONG = (200, {"message": "pong"})


def free_port() -> int:
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def test_health_passes_on_pong_and_sends_the_sites_host():
	with serve({"/api/method/ping": PONG}) as (server, url):
		result = health(Target(url=url, host="shop.example.com"))
	assert result.status == PASS
	assert result.value.endswith(" ms")
	assert server.hosts == ["shop.example.com"]


def test_maintenance_mode_503_is_service_down():
	with serve({"/api/method/ping": (503, "maintenance")}) as (_, url):
		result = health(Target(url=url))
	assert result.status == FAIL
	assert "maintenance" in result.message


def test_server_error_or_wrong_body_fails():
	with serve({"/api/method/ping": (500, "boom")}) as (_, url):
		assert health(Target(url=url)).status == FAIL
	with serve({"/api/method/ping": (200, {"message": "pang"})}) as (_, url):
		assert health(Target(url=url)).message == "ping answered HTTP 200 without pong"


def test_absent_server_fails_with_where_it_looked():
	url = f"http://127.0.0.1:{free_port()}"
	result = health(Target(url=url))
	assert result.status == FAIL
	assert url in result.message


def test_hanging_server_fails_after_the_request_timeout():
	with serve({"/api/method/ping": 2}) as (_, url):
		result = health(Target(url=url, request_timeout=0.3))
	assert result.status == FAIL
	assert "did not answer within 0.3s" in result.message


def test_login_page():
	with serve({"/login": (200, "<html>login</html>")}) as (_, url):
		assert login_page(Target(url=url)).status == PASS
	with serve({"/login": (502, "bad gateway")}) as (_, url):
		assert login_page(Target(url=url)).message == "/login answered HTTP 502"
