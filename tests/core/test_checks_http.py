import json
import socket

from http_server import serve

from deploy_manager.core.checks import FAIL, PASS, Target
from deploy_manager.core.checks.http import desk_assets, health, login_page

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


def _bench_assets(tmp_path, named: dict, built: list[str]):
	"""sites/assets with frappe's public folder holding two bundle sources, as bench build leaves it."""
	root = tmp_path / "sites" / "assets"
	public = tmp_path / "apps" / "frappe" / "frappe" / "public"
	for source in (
		"js/desk.bundle.js",
		"scss/website.bundle.scss",
		"js/lib/helper.js",
		"node_modules/x/y.bundle.js",
	):
		(public / source).parent.mkdir(parents=True, exist_ok=True)
		(public / source).write_text("//")
	root.mkdir(parents=True)
	(root / "frappe").symlink_to(public)
	(root / "assets.json").write_text(json.dumps(named))
	for output in built:
		(root.parent / output.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
		(root.parent / output.lstrip("/")).write_text("built")
	return root, str(public)


BUILT = {
	"desk.bundle.js": "/assets/frappe/dist/js/desk.bundle.ABC.js",
	"website.bundle.css": "/assets/frappe/dist/css/website.bundle.DEF.css",
}


def test_desk_assets_pass_when_every_bundle_is_named_and_built(tmp_path):
	root, public = _bench_assets(tmp_path, BUILT, list(BUILT.values()))
	apps = {"frappe": public, "no_public_folder": str(tmp_path / "apps" / "x" / "x" / "public")}
	result = desk_assets(Target(extra={"assets": {"root": str(root), "apps": apps}}))
	assert (result.status, result.value) == (PASS, "2")


def test_desk_assets_fail_on_a_bundle_not_built_a_missing_file_or_an_app_not_linked(tmp_path):
	named = {"desk.bundle.js": BUILT["desk.bundle.js"]}
	root, public = _bench_assets(tmp_path, named, [])
	erpnext = tmp_path / "apps" / "erpnext" / "erpnext" / "public"
	erpnext.mkdir(parents=True)
	apps = {"frappe": public, "erpnext": str(erpnext)}
	result = desk_assets(Target(extra={"assets": {"root": str(root), "apps": apps}}))
	assert result.status == FAIL
	assert "erpnext is not linked" in result.message
	assert "frappe: website.bundle.css not built" in result.message
	assert "/assets/frappe/dist/js/desk.bundle.ABC.js named in assets.json but missing" in result.message


def test_desk_assets_fail_without_assets_json(tmp_path):
	result = desk_assets(Target(extra={"assets": {"root": str(tmp_path), "apps": {"frappe": str(tmp_path)}}}))
	assert result.status == FAIL
	assert "run bench build" in result.message
