"""Post-deploy checks: small, uniform units that each return one CheckResult.

A check is a plain function taking a Target (what to check, gathered by the Frappe-aware side or
given by hand) and returning a CheckResult. It is registered where it is written (`@register`), with
what makes it fail: the suite and the table of checks in docs/verification.md both come from there.
`run` gives every check its own timeout and turns a check that raises or hangs into an `error`
result, so one broken check never stops the suite.
"""

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

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
	transient: bool = False


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
	transient: bool = False


# Where a check looks from. OUTSIDE needs only the site's config (its address and services), so those
# checks run while the facts the INSIDE ones need are read from the site's database.
OUTSIDE, INSIDE = "outside", "inside"


@dataclass(frozen=True)
class Registered:
	"""A check as written: what the suite runs, and its row in docs/verification.md."""

	name: str
	category: str
	symptom: str
	looks: str
	# One line for the table.
	fails_when: str
	# fn(target); with `per_flow`, fn(flow, target), made into a check per key flow in Settings.
	fn: Callable[..., CheckResult]
	timeout: float = 10.0
	per_flow: bool = False
	# A signal that can fail for a moment and recover by itself (a tick not yet come, workers still
	# starting): its failure counts once it repeats (see verdict.decide).
	transient: bool = False


_registry: list[Registered] = []


def register(
	name: str,
	category: str,
	symptom: str,
	*,
	looks: str,
	fails_when: str,
	timeout: float = 10.0,
	per_flow: bool = False,
	transient: bool = False,
):
	"""Register the decorated function as a check of the suite; it stays a plain function."""

	def add(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
		_registry.append(
			Registered(name, category, symptom, looks, fails_when, fn, timeout, per_flow, transient)
		)
		return fn

	return add


REPORT_ORDER = (
	"http",
	"dependencies",
	"network",
	"flows",
	"performance",
	"workers",
	"scheduler",
	"migrations",
	"errors",
	"system",
	"security",
	"backups",
)


def registered() -> list[Registered]:
	"""Every check of the modules in this package, by module name, in the order each writes them."""
	# Importing a module registers its checks: none is left out for want of an import.
	for module in pkgutil.iter_modules(__path__, f"{__name__}."):
		importlib.import_module(module.name)
	# Sorted, as modules register in the order something first imported them: the families a
	# report reads best in first (is it up, can it work, did the deploy go well), any other after.
	order = {name: n for n, name in enumerate(REPORT_ORDER)}
	return sorted(_registry, key=lambda r: order.get(r.fn.__module__.rsplit(".", 1)[-1], len(order)))


def suite(looks: str) -> list[Check]:
	"""The checks that run whatever Settings hold, of those that look from `looks`."""
	return [
		Check(r.name, r.category, r.symptom, r.fn, r.timeout, r.transient)
		for r in registered()
		if r.looks == looks and not r.per_flow
	]


def made_per_flow(fn: Callable[..., CheckResult], flow, name: str, timeout: float) -> Check:
	"""The check for one key flow (or its endpoint) of `fn`, registered `per_flow`, named after it."""
	registration = next(r for r in _registry if r.fn is fn)
	return Check(
		name,
		registration.category,
		registration.symptom,
		partial(fn, flow),
		timeout,
		registration.transient,
	)


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
				transient=check.transient,
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
