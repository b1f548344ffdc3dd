"""Post-deploy checks: small, uniform units that each return one CheckResult.

A check is a plain function taking a Target (what to check, gathered by the Frappe-aware side or
given by hand) and returning a CheckResult. `run` gives every check its own timeout and turns a
check that raises or hangs into an `error` result, so one broken check never stops the suite.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

PASS, WARN, FAIL, ERROR = "pass", "warn", "fail", "error"


@dataclass(frozen=True)
class CheckResult:
	status: str
	message: str
	value: str = ""
	threshold: str = ""
	baseline: str = ""
	# A number a later run compares with (a response time in ms), kept as the baseline.
	metric: float | None = None
	# Filled in by `run`.
	name: str = ""
	category: str = ""
	symptom: str = ""
	duration: float = 0.0


def some(names: list[str], shown: int = 5) -> str:
	"""The first few names for a one-line message, and how many more there are."""
	more = len(names) - shown
	return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


class Secret(str):
	"""A password that keeps out of reprs, and so out of logged tracebacks with their locals."""

	def __repr__(self) -> str:
		return "'********'"


@dataclass(frozen=True)
class Target:
	"""Everything a check may look at; each check reads only what it needs."""

	url: str = ""  # base URL of the site, e.g. http://127.0.0.1:8000
	host: str = ""  # Host header when the URL is the bench's port rather than the site's name
	request_timeout: float = 5.0
	extra: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Check:
	name: str
	category: str
	# The guide's symptom a failure of this check is: see verdict.SYMPTOMS.
	symptom: str
	fn: Callable[[Target], CheckResult]
	timeout: float = 10.0


def gathered(target: Target, key: str, what: str, plural: bool = False) -> dict | CheckResult:
	"""The facts a check needs from `Target.extra`, or the result that says they are missing: an
	error when gathering them failed (they come as its exception), a warning when nobody gathered them."""
	facts = target.extra.get(key)
	if isinstance(facts, Exception):
		return CheckResult(ERROR, f"{what} could not be read: {facts}")
	if facts is None:
		return CheckResult(WARN, f"{what} {'were' if plural else 'was'} not read")
	return facts


def run(checks: list[Check], target: Target, deadline: float = 30.0) -> list[CheckResult]:
	"""Run all checks at once; each ends by its own timeout, and all by `deadline` seconds.

	Each check runs in a daemon thread: one that hangs is abandoned, and cannot keep the process
	from exiting either.
	"""
	started = time.monotonic()
	outcomes: dict[int, CheckResult] = {}
	threads = []
	for index, check in enumerate(checks):
		thread = threading.Thread(
			target=_run_one, args=(check, target, outcomes, index), name=f"dm-check-{check.name}", daemon=True
		)
		thread.start()
		threads.append(thread)
	results = []
	for index, (check, thread) in enumerate(zip(checks, threads, strict=True)):
		left = min(check.timeout, deadline) - (time.monotonic() - started)
		thread.join(max(0.0, left))
		result = outcomes.get(index) or CheckResult(
			ERROR, f"did not finish within {min(check.timeout, deadline):g}s"
		)
		results.append(
			replace(
				result,
				name=check.name,
				category=check.category,
				symptom=check.symptom,
				duration=round(min(time.monotonic() - started, result.duration or float("inf")), 3),
			)
		)
	return results


def _run_one(check: Check, target: Target, outcomes: dict, index: int):
	began = time.monotonic()
	try:
		result = check.fn(target)
	except Exception as e:
		result = CheckResult(ERROR, f"{type(e).__name__}: {e}")
	outcomes[index] = replace(result, duration=time.monotonic() - began)
