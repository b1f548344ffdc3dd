"""The site answers over HTTP and loads: the guide's health endpoint, the page people log in on, and
the built Desk assets of every installed app."""

import json
import os
from pathlib import Path

import requests

from deploy_manager.core import outbound
from deploy_manager.core.checks import FAIL, OUTSIDE, PASS, CheckResult, Target, register, some


def request(
	target: Target, path: str, method: str = "GET", headers: dict | None = None, timeout: float | None = None
) -> requests.Response:
	# The bench's own port serves every site: the Host header picks ours. Redirects are followed
	# (http to https, say): where they lead is what users get.
	headers = {**({"Host": target.host} if target.host else {}), **(headers or {})}
	with outbound.session() as session:
		return session.request(
			method,
			target.url.rstrip("/") + on_site(path),
			headers=headers,
			timeout=timeout or target.request_timeout,
			allow_redirects=True,
		)


def on_site(path: str) -> str:
	"""`path` when it is a path on the site itself; the checks never send the site's requests, or an
	API user's key, anywhere else."""
	if not path.startswith("/") or path.startswith("//") or "\\" in path or any(c.isspace() for c in path):
		raise ValueError(f"{path!r} is not a path on this site: it must start with a single /")
	return path


def answered(
	target: Target, path: str, method: str = "GET", headers: dict | None = None, timeout: float | None = None
) -> requests.Response | CheckResult:
	"""The response, or the failed result that says why there is none."""
	timeout = timeout or target.request_timeout
	try:
		response = request(target, path, method, headers, timeout)
	except requests.Timeout:
		return CheckResult(FAIL, f"{path} did not answer within {timeout:g}s")
	except requests.ConnectionError:
		return CheckResult(FAIL, f"nothing answers at {target.url}")
	except outbound.RefusedAddress as e:
		return CheckResult(FAIL, f"{path} not asked: {e}")
	if response.status_code == 503:
		return CheckResult(FAIL, f"{path} answers 503: the site is in maintenance mode or down", value="503")
	return response


@register(
	"Health endpoint",
	"http",
	"service_down",
	looks=OUTSIDE,
	fails_when="`GET /api/method/ping` does not answer pong: nothing listens, a timeout, 503 (maintenance)",
)
def health(target: Target) -> CheckResult:
	response = answered(target, "/api/method/ping")
	if isinstance(response, CheckResult):
		return response
	took = f"{response.elapsed.total_seconds() * 1000:.0f} ms"
	try:
		message = response.json().get("message")
	except ValueError:
		message = None
	if response.status_code != 200 or message != "pong":
		return CheckResult(
			FAIL, f"ping answered HTTP {response.status_code} without pong", value=str(response.status_code)
		)
	return CheckResult(PASS, f"pong in {took}", value=took)


@register("Login page", "http", "service_down", looks=OUTSIDE, fails_when="`/login` does not answer 200")
def login_page(target: Target) -> CheckResult:
	response = answered(target, "/login")
	if isinstance(response, CheckResult):
		return response
	if response.status_code != 200:
		return CheckResult(
			FAIL, f"/login answered HTTP {response.status_code}", value=str(response.status_code)
		)
	return CheckResult(PASS, "/login loads", value="200")


# What esbuild builds: every such file under an app's public folder is a bundle, named in assets.json
# after what it becomes (desk.bundle.scss as desk.bundle.css).
BUNDLE_KEYS = {
	**dict.fromkeys((".js", ".ts", ".jsx"), ".js"),
	**dict.fromkeys((".css", ".sass", ".scss", ".less", ".styl"), ".css"),
}


@register(
	"Desk assets",
	"http",
	"critical",
	looks=OUTSIDE,
	fails_when="an installed app's bundles are not in `sites/assets/assets.json`, a file it names is "
	"missing, or the app's public folder is not linked (`bench build` skipped or broken)",
)
def desk_assets(target: Target) -> CheckResult:
	"""Every installed app's bundles are named in sites/assets/assets.json and built on disk: a deploy
	that skipped or broke `bench build` serves a login page but a blank Desk.

	Facts: `extra["assets"]` = {"root": the bench's sites/assets folder, "apps": installed app ->
	its public folder (an app without one has nothing to build)}.
	"""
	facts = target.extra.get("assets") or {}
	root = Path(facts.get("root") or "")
	try:
		named = json.loads((root / "assets.json").read_text())
	except (OSError, ValueError) as e:
		return CheckResult(FAIL, f"{root / 'assets.json'} cannot be read ({e}): run bench build")
	problems, count = [], 0
	apps = facts.get("apps") or {}
	for app, public in sorted(apps.items()):
		if not Path(public).is_dir():
			continue
		if not (root / app).is_dir():
			problems.append(f"{app} is not linked into {root}")
			continue
		bundles = _bundles(Path(public))
		count += len(bundles)
		unbuilt = sorted(bundles - set(named))
		if unbuilt:
			problems.append(f"{app}: {some(unbuilt)} not built")
	# Paths in assets.json are relative to the sites folder: /assets/frappe/dist/js/...
	missing = sorted(output for output in named.values() if not (root.parent / output.lstrip("/")).is_file())
	if missing:
		problems.append(f"{some(missing)} named in assets.json but missing")
	if problems:
		return CheckResult(FAIL, "; ".join(problems), value=f"{len(problems)} problem(s)")
	return CheckResult(PASS, f"{count} bundles built for {len(apps)} apps", value=str(count))


def _bundles(public: Path) -> set[str]:
	found = set()
	# Frappe links node_modules into its public folder: pruned, as esbuild ignores it, with dist.
	for folder, subfolders, files in os.walk(public):
		if Path(folder) == public:
			subfolders[:] = [d for d in subfolders if d not in ("node_modules", "dist")]
		found.update(
			Path(f).stem + BUNDLE_KEYS[Path(f).suffix]
			for f in files
			if ".bundle." in f and Path(f).suffix in BUNDLE_KEYS
		)
	return found
