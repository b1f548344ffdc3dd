import importlib
import inspect
import pkgutil
import sys
from collections import Counter
from pathlib import Path

from deploy_manager.core import checks
from deploy_manager.core.checks import CheckResult, flows, performance
from deploy_manager.core.formatting import with_checks_table
from deploy_manager.core.verdict import SYMPTOMS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "verification.md"


def written_checks() -> list:
	"""Every public function of a check module that returns a CheckResult: the checks as written."""
	found = []
	for module in pkgutil.iter_modules(checks.__path__, f"{checks.__name__}."):
		for fn in vars(importlib.import_module(module.name)).values():
			if (
				inspect.isfunction(fn)
				and fn.__module__ == module.name
				and not fn.__name__.startswith("_")
				and inspect.signature(fn).return_annotation is CheckResult
			):
				found.append(fn)
	return found


def test_the_table_in_the_docs_is_the_registered_checks():
	page = PAGE.read_text()
	assert with_checks_table(page, checks.registered()) == page, (
		f"docs/verification.md differs from the registered checks: run {sys.executable} scripts/checks-table"
	)


def test_every_check_written_is_registered_once():
	times = Counter(r.fn for r in checks.registered())
	written = written_checks()
	assert {f"{fn.__module__}.{fn.__name__}": times[fn] for fn in written} == {
		f"{fn.__module__}.{fn.__name__}": 1 for fn in written
	}
	assert set(times) == set(written), "a registered function is not a check of a check module"


def test_check_names_are_unique():
	names = Counter(r.name for r in checks.registered())
	assert [name for name, count in names.items() if count > 1] == []


def test_each_registration_has_a_symptom_a_side_and_one_line_for_the_table():
	for r in checks.registered():
		assert r.symptom in SYMPTOMS, r.name
		assert r.looks in (checks.OUTSIDE, checks.INSIDE), r.name
		assert r.fails_when and "\n" not in r.fails_when and "|" not in r.fails_when, r.name


def test_the_suite_runs_every_check_not_made_per_flow_once():
	suite = checks.suite(checks.OUTSIDE) + checks.suite(checks.INSIDE)
	assert sorted(c.name for c in suite) == sorted(r.name for r in checks.registered() if not r.per_flow)


def test_checks_made_per_flow_keep_their_registrations_category_and_symptom():
	[flow] = flows.checks_for([flows.Flow("/app")])
	[timing] = performance.checks_for([performance.Endpoint("/app")], samples=10, request_timeout=5)
	assert (flow.name, flow.category, flow.symptom, flow.timeout) == (
		"Key flow GET /app",
		"flows",
		"critical",
		20,
	)
	assert (timing.name, timing.category, timing.symptom, timing.timeout) == (
		"Response time GET /app",
		"performance",
		"performance",
		55,
	)
