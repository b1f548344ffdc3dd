"""Response times against a baseline: the guide's "Performance: response times normal".

Each endpoint (ping and every key flow) is timed over N requests after one untimed warm-up; its
median (p50) is compared with the median of the same check in the baseline run (the pre-deploy
verification, or the last Confirmed deployment's). The median, not p95: with ten requests p95 is
the slowest one, and one request that met a cache being rebuilt is not a slower release. p95 is
reported beside it. Facts: `extra["performance"]` = {"samples": N, "threshold": 0.5 (fraction
slower that counts), "baselines": {check name: p50 ms}}.
"""

import math
import time
from dataclasses import dataclass

import requests

from deploy_manager.core.checks import (
	ERROR,
	FAIL,
	OUTSIDE,
	PASS,
	Check,
	CheckResult,
	Target,
	made_per_flow,
	register,
)
from deploy_manager.core.checks.flows import auth_headers
from deploy_manager.core.checks.http import request

DEFAULT_SAMPLES = 10
DEFAULT_THRESHOLD = 0.5
# On a fast site a few milliseconds are noise, not a slower release: smaller slowdowns never count.
MIN_SLOWDOWN_MS = 50.0


@dataclass(frozen=True)
class Endpoint:
	path: str
	method: str = "GET"
	as_api_user: bool = False

	@property
	def check_name(self) -> str:
		return f"Response time {self.method} {self.path}"


def percentile(values: list[float], fraction: float) -> float:
	"""Nearest-rank percentile: a value that was really measured."""
	ordered = sorted(values)
	return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@register(
	"Response time METHOD PATH",
	"performance",
	"performance",
	looks=OUTSIDE,
	fails_when=f"ping and each reading key flow, timed over N requests ({DEFAULT_SAMPLES}) after a warm-up: "
	f"the median (p50) more than the threshold ({DEFAULT_THRESHOLD:.0%}) worse than the baseline and by at "
	f"least {MIN_SLOWDOWN_MS:g} ms (smaller slowdowns are noise); p95 is reported beside it (with ten "
	"requests it is the slowest one, too noisy to judge by)",
	per_flow=True,
	transient=True,
)
def timing(endpoint: Endpoint, target: Target) -> CheckResult:
	facts = target.extra.get("performance") or {}
	samples = int(facts.get("samples") or DEFAULT_SAMPLES)
	threshold = float(facts.get("threshold") or DEFAULT_THRESHOLD)
	baseline = (facts.get("baselines") or {}).get(endpoint.check_name)
	headers = auth_headers(target, endpoint.as_api_user)
	times = []
	try:
		for n in range(samples + 1):
			started = time.perf_counter()
			response = request(target, endpoint.path, endpoint.method, headers)
			took = (time.perf_counter() - started) * 1000
			if response.status_code >= 400:
				return CheckResult(ERROR, f"could not be timed: HTTP {response.status_code}")
			if n:  # the first request warms caches and connections up, and is not counted
				times.append(took)
	except requests.RequestException as e:
		return CheckResult(ERROR, f"could not be timed: {type(e).__name__}")
	p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
	measured = f"p50 {p50:.0f} ms, p95 {p95:.0f} ms over {samples} requests"
	limit = f"+{threshold:.0%}"
	if not baseline:
		return CheckResult(PASS, f"{measured}; no baseline yet", f"p50 {p50:.0f} ms", limit, metric=p50)
	slower = p50 / baseline - 1
	status = FAIL if slower > threshold and p50 - baseline >= MIN_SLOWDOWN_MS else PASS
	return CheckResult(
		status,
		f"{measured}; p50 {slower:+.0%} against the baseline of {baseline:.0f} ms",
		f"p50 {p50:.0f} ms",
		limit,
		baseline=f"p50 {baseline:.0f} ms",
		metric=p50,
	)


def checks_for(
	endpoints: list[Endpoint], samples: int = DEFAULT_SAMPLES, request_timeout: float = 5.0
) -> list[Check]:
	# Sequential requests: the timeout covers all of them.
	return [
		made_per_flow(timing, endpoint, endpoint.check_name, timeout=(samples + 1) * request_timeout)
		for endpoint in endpoints
	]
