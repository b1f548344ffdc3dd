import pytest
from http_server import serve

from deploy_manager.core.checks import FAIL, PASS, WARN, Secret, Target
from deploy_manager.core.checks.flows import Flow, run_flow
from deploy_manager.core.checks.http import on_site


@pytest.mark.parametrize("path", ["https://evil.example/x", "//evil.example/x", "app", "/a b", "/\\evil"])
def test_only_paths_on_the_site_itself(path):
	with pytest.raises(ValueError, match="not a path on this site"):
		on_site(path)
	with pytest.raises(ValueError):
		Flow(path)


def test_unknown_method_is_refused():
	with pytest.raises(ValueError, match="DELETE"):
		Flow("/app", method="DELETE")


def test_flow_passes_with_expected_status_and_text_and_sends_the_api_token_only_when_asked():
	routes = {"/app/todo": (200, "<h1>To Do</h1>"), "/api/resource/ToDo": (200, {"data": []})}
	with serve(routes) as (server, url):
		target = Target(url=url, host="site.example", extra={"api_token": Secret("key:secret")})
		assert run_flow(Flow("/app/todo", expected_text="To Do"), target).status == PASS
		assert run_flow(Flow("/api/resource/ToDo", "HEAD", as_api_user=True), target).status == PASS
	(_, _, plain), (method, _, api) = server.requests
	assert "Authorization" not in plain
	assert (method, api["Authorization"], api["Host"]) == ("HEAD", "token key:secret", "site.example")


def test_flow_fails_on_wrong_status_or_missing_text():
	with serve({"/app/todo": (200, "<h1>Error</h1>"), "/api/method/x": (500, "boom")}) as (_, url):
		target = Target(url=url)
		text = run_flow(Flow("/app/todo", expected_text="To Do"), target)
		status = run_flow(Flow("/api/method/x", "POST"), target)
	assert (text.status, text.message) == (FAIL, "GET /app/todo answered without 'To Do'")
	assert (status.status, status.message) == (FAIL, "POST /api/method/x answered HTTP 500, expected 200")


def test_flow_as_api_user_without_credentials_fails_without_sending_anything():
	with serve({"/api/resource/ToDo": (200, "{}")}) as (server, url):
		result = run_flow(Flow("/api/resource/ToDo", as_api_user=True), Target(url=url))
	assert result.status == FAIL
	assert "no API key" in result.message
	assert server.requests == []


def test_slow_flow_warns_and_a_hung_one_fails():
	with serve({"/slow": 0.3, "/hung": 3}) as (_, url):
		slow = run_flow(Flow("/slow", time_limit=0.1), Target(url=url))
		hung = run_flow(Flow("/hung", time_limit=0.2), Target(url=url, request_timeout=0.2))
	assert slow.status == WARN
	assert "over its limit of 0.1s" in slow.message
	assert (hung.status, hung.message) == (FAIL, "/hung did not answer within 0.4s")
