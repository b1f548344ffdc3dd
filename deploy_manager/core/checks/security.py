"""Security settings a deployment can leave wrong: the guide's session_expiry, deny_multiple_sessions.

The facts come gathered in `Target.extra["security"]`: `production`, `session_expiry` (System
Settings, "hh:mm"), `deny_multiple_sessions` (System Settings), `require_single_session` (Deploy
Manager Settings want it), `developer_mode` and `allow_tests` (site config), and
`default_admin_password` ("" when the Administrator password is not a well-known default). A gathering
that failed comes as the exception itself.
"""

from deploy_manager.core.checks import FAIL, INSIDE, PASS, CheckResult, Target, gathered, register

# What Frappe itself uses when System Settings has no session expiry (frappe/sessions.py).
FRAPPE_SESSION_EXPIRY = "240:00"


@register(
	"Security settings",
	"security",
	"minor",
	looks=INSIDE,
	fails_when="the Administrator password is a well-known default; session expiry unset or malformed; "
	"multiple sessions allowed though Settings require one; in Production, developer mode or allow_tests on",
)
def security_settings(target: Target) -> CheckResult:
	facts = gathered(target, "security", "the security settings", plural=True)
	if isinstance(facts, CheckResult):
		return facts
	problems = _problems(facts)
	value = f"{len(problems)} problem(s)"
	if problems:
		return CheckResult(FAIL, "; ".join(problems), value)
	return CheckResult(PASS, "no insecure setting found", value)


def _problems(facts: dict) -> list[str]:
	problems = []
	if facts["default_admin_password"]:
		# Which default matched is the password itself: it stays out of the message.
		problems.append("the Administrator password is a well-known default")
	if facts["require_single_session"] and not facts["deny_multiple_sessions"]:
		problems.append("users may hold several sessions though Settings require one")
	expiry = facts["session_expiry"]
	if not expiry:
		problems.append(
			f"session expiry is not set in System Settings (Frappe falls back to {FRAPPE_SESSION_EXPIRY})"
		)
	elif _hours(expiry) is None:
		problems.append(f"session expiry {expiry!r} is not hh:mm")
	if not facts["production"]:
		# Developer mode and tests are what development and test sites are for.
		return problems
	if facts["developer_mode"]:
		problems.append("developer mode is on in production")
	if facts["allow_tests"]:
		problems.append("allow_tests is on in production: tests may run against its data")
	return problems


def _hours(expiry: str) -> float | None:
	hours, minutes, *_ = [*expiry.split(":"), "0"]
	try:
		return int(hours) + int(minutes) / 60
	except ValueError:
		return None
