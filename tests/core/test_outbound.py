import pytest
from http_server import serve

from deploy_manager.core import outbound
from deploy_manager.core.checks import FAIL, PASS, Target
from deploy_manager.core.checks.flows import Flow, run_flow
from deploy_manager.core.checks.http import answered
from deploy_manager.core.checks.network import _unanswered


@pytest.mark.parametrize(
	"url",
	[
		"http://169.254.169.254/latest/meta-data/",
		"http://[fe80::1]/",
		"http://[::ffff:169.254.169.254]/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://100.100.100.200/latest/meta-data/",
	],
)
def test_link_local_and_metadata_addresses_are_refused(url):
	assert outbound.refusal(url)
	assert outbound.refusal(url, resolve=False)


@pytest.mark.parametrize(
	"url", ["http://127.0.0.1:8000/", "https://erp.example.com/", "http://dm.localhost/"]
)
def test_ordinary_addresses_may_be_asked(url):
	assert outbound.refusal(url, resolve=False) == ""


def test_loopback_is_localhost_its_subdomains_and_loopback_addresses():
	assert all(map(outbound.is_loopback, ("localhost", "dm.localhost", "127.0.0.1", "::1", "[::1]")))
	assert not any(map(outbound.is_loopback, ("erp.example.com", "10.0.0.1", "localhost.example.com", None)))


def test_a_redirect_to_the_metadata_address_is_not_followed():
	metadata = {"Location": "http://169.254.169.254/latest/meta-data/iam/"}
	with serve({"/app": (302, "", metadata), "/ok": (200, "fine")}) as (server, url):
		result = answered(Target(url=url), "/app")
		assert result.status == FAIL and "169.254.169.254" in result.message
		assert run_flow(Flow("/app", expected_status=200), Target(url=url)).status == FAIL
		assert run_flow(Flow("/ok"), Target(url=url)).status == PASS
		assert "link-local" in _unanswered([url + "/app"], 2)[url + "/app"]
	assert [path for _, path, _ in server.requests] == ["/app", "/app", "/ok", "/app"]


def test_a_post_as_api_user_is_sent_only_when_allowed():
	with serve({"/api/method/x": (200, {"message": "ok"})}) as (server, url):
		target = Target(url=url, extra={"api_token": "key:secret"})
		refused = run_flow(Flow("/api/method/x", "POST", as_api_user=True), target)
		assert "not sent" in refused.message and not server.requests
		assert (
			run_flow(Flow("/api/method/x", "POST", as_api_user=True, post_allowed=True), target).status
			== PASS
		)


@pytest.mark.parametrize(
	"url",
	[
		"javascript://ci/%0aalert(document.cookie)",
		"JavaScript:alert(1)",
		"  javascript:alert(1)",
		"java\tscript:alert(1)",
		"\x01javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)",
		"ftp://ci.example.com/1",
		"https://",
		"//ci.example.com/1",
		"ci.example.com/1",
		"https://ci.example.com/a b",
	],
)
def test_links_other_than_http_and_https_are_refused(url):
	assert outbound.link_refusal(url)


@pytest.mark.parametrize("url", ["https://ci.example.com/runs/1?x=1#y", "HTTP://127.0.0.1:8000/"])
def test_http_and_https_links_are_stored(url):
	assert outbound.link_refusal(url) == ""
