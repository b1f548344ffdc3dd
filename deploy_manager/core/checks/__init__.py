"""Post-deploy checks: small, uniform units that each return one CheckResult.

A check is a plain function taking a Target (what to check, gathered by the Frappe-aware side or
given by hand) and returning a CheckResult. `run` gives every check its own timeout and turns a
check that raises or hangs into an `error` result, so one broken check never stops the suite.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace

PASS, WARN, FAIL, ERROR = "pass", "warn", "fail", "error"


@dataclass(frozen=True)
class CheckResult:
	status: str
	message: str
	value: str = ""
	threshold: str = ""
	baseline: str = ""
	# Filled in by `run`.
	name: str = ""
	category: str = ""
	symptom: str = ""
	duration: float = 0.0

	@property
	def ok(self) -> bool:
		return self.status == PASS


@dataclass(frozen=True)
class Target:
	"""Everything a check may look at; each check reads only what it needs."""

	url: str = ""  # base URL of the site, e.g. http://127.0.0.1:8000
	host: str = ""  # Host header when the URL is the bench's port rather than the site's name
	request_timeout: float = 5.0
	extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
	name: str
	category: str
	# The guide's symptom a failure of this check is: see verdict.SYMPTOMS.
	symptom: str
	fn: Callable[[Target], CheckResult]
	timeout: float = 10.0


def run(checks: list[Check], target: Target, deadline: float = 30.0) -> list[CheckResult]:
	"""Run all checks at once; each ends by its own timeout, and all by `deadline` seconds."""
	started = time.monotonic()
	# Threads that hang are abandoned, not joined: the caller gets its results on time.
	pool = ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="dm-check")
	futures = [(check, time.monotonic(), pool.submit(check.fn, target)) for check in checks]
	results = []
	for check, submitted, future in futures:
		left = min(check.timeout - (time.monotonic() - submitted), deadline - (time.monotonic() - started))
		try:
			result = future.result(timeout=max(0.0, left))
		except FutureTimeout:
			result = CheckResult(ERROR, f"did not finish within {min(check.timeout, deadline):g}s")
		except Exception as e:
			result = CheckResult(ERROR, f"{type(e).__name__}: {e}")
		results.append(
			replace(
				result,
				name=check.name,
				category=check.category,
				symptom=check.symptom,
				duration=round(time.monotonic() - submitted, 3),
			)
		)
	pool.shutdown(wait=False, cancel_futures=True)
	return results
