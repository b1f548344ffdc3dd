"""The site answers over HTTP: the guide's health endpoint and the page people log in on."""

import requests

from deploy_manager.core.checks import FAIL, PASS, Check, CheckResult, Target


def get(target: Target, path: str) -> requests.Response:
	# The bench's own port serves every site: the Host header picks ours. Redirects are followed
	# (http to https, say): where they lead is what users get.
	headers = {"Host": target.host} if target.host else {}
	return requests.get(target.url.rstrip("/") + path, headers=headers, timeout=target.request_timeout)


def answered(target: Target, path: str) -> requests.Response | CheckResult:
	"""The response, or the failed result that says why there is none."""
	try:
		response = get(target, path)
	except requests.Timeout:
		return CheckResult(FAIL, f"{path} did not answer within {target.request_timeout:g}s")
	except requests.ConnectionError:
		return CheckResult(FAIL, f"nothing answers at {target.url}")
	if response.status_code == 503:
		return CheckResult(FAIL, f"{path} answers 503: the site is in maintenance mode or down", value="503")
	return response


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


def login_page(target: Target) -> CheckResult:
	response = answered(target, "/login")
	if isinstance(response, CheckResult):
		return response
	if response.status_code != 200:
		return CheckResult(
			FAIL, f"/login answered HTTP {response.status_code}", value=str(response.status_code)
		)
	return CheckResult(PASS, "/login loads", value="200")


CHECKS = [
	Check("Health endpoint", "http", "service_down", health),
	Check("Login page", "http", "service_down", login_page),
]
