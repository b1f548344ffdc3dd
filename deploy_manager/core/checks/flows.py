"""Key user flows: the pages and API calls an administrator names as what must keep working.

Each flow is its own check, made from Settings by `checks_for`. A flow may run as an API user: its
key and secret come as one Secret in `Target.extra["api_token"]` and only ever go to the site itself
(paths are checked by `http.on_site`).
"""

from dataclasses import dataclass

from deploy_manager.core.checks import (
	FAIL,
	OUTSIDE,
	PASS,
	WARN,
	Check,
	CheckResult,
	Target,
	made_per_flow,
	register,
)
from deploy_manager.core.checks.http import answered, on_site

METHODS = ("GET", "POST", "HEAD")


@dataclass(frozen=True)
class Flow:
	path: str
	method: str = "GET"
	expected_status: int = 200
	expected_text: str = ""
	# Seconds: slower than this is worth a warning (timing against the baseline is performance's).
	time_limit: float = 5.0
	as_api_user: bool = False
	# A POST as the API user writes with its rights on every run: only when a System Manager said so.
	post_allowed: bool = False

	def __post_init__(self):
		on_site(self.path)
		if self.method not in METHODS:
			raise ValueError(f"{self.method!r} is not one of {', '.join(METHODS)}")

	@property
	def label(self) -> str:
		return f"{self.method} {self.path}"


def auth_headers(target: Target, as_api_user: bool) -> dict:
	token = target.extra.get("api_token") if as_api_user else None
	return {"Authorization": f"token {token}"} if token else {}


@register(
	"Key flow METHOD PATH",
	"flows",
	"critical",
	looks=OUTSIDE,
	fails_when="a flow from Settings answers another status than expected or lacks its expected text "
	"(warns over its time limit); flows marked As API User send the key and secret from Settings",
	per_flow=True,
)
def run_flow(flow: Flow, target: Target) -> CheckResult:
	if flow.as_api_user and not target.extra.get("api_token"):
		return CheckResult(FAIL, f"{flow.label} runs as an API user, but no API key and secret are set")
	if flow.method == "POST" and flow.as_api_user and not flow.post_allowed:
		return CheckResult(
			WARN, f"{flow.label} not sent: a POST as API user must be marked POST as API User Allowed"
		)
	# A flow may take up to its limit and more; the request waits twice that before giving up.
	timeout = max(target.request_timeout, 2 * flow.time_limit)
	response = answered(target, flow.path, flow.method, auth_headers(target, flow.as_api_user), timeout)
	if isinstance(response, CheckResult):
		return response
	took = response.elapsed.total_seconds()
	value = f"{response.status_code} in {took * 1000:.0f} ms"
	if response.status_code != flow.expected_status:
		return CheckResult(
			FAIL,
			f"{flow.label} answered HTTP {response.status_code}, expected {flow.expected_status}",
			value,
			threshold=str(flow.expected_status),
		)
	if flow.expected_text and flow.expected_text not in response.text:
		return CheckResult(FAIL, f"{flow.label} answered without {flow.expected_text!r}", value)
	if took > flow.time_limit:
		return CheckResult(
			WARN,
			f"{flow.label} took {took:.2f}s, over its limit of {flow.time_limit:g}s",
			value,
			threshold=f"{flow.time_limit:g} s",
		)
	return CheckResult(PASS, f"{flow.label} works", value, threshold=f"{flow.time_limit:g} s")


def checks_for(flows: list[Flow]) -> list[Check]:
	return [
		made_per_flow(run_flow, flow, f"Key flow {flow.label}", timeout=3 * flow.time_limit + 5)
		for flow in flows
	]
