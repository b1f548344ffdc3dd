"""The guide's "Error logs: no new errors": Error Log entries since the deployment.

The facts come gathered in `Target.extra["error_logs"]`: `after` (entries since the deployment
finished), `before` (entries in an equal window before it started), `window_minutes`, and
`new_titles` (titles not seen in the weeks before the deployment). A gathering that failed comes as
the exception itself.
"""

from deploy_manager.core.checks import FAIL, INSIDE, PASS, WARN, CheckResult, Target, gathered, register, some

# A rise smaller than this is noise on a quiet site.
MIN_RISE = 5


@register(
	"Error logs",
	"logs",
	"critical",
	looks=INSIDE,
	fails_when="Error Log titles not seen in the 14 days before the deployment appear after it "
	"(a rise of known ones warns)",
)
def error_logs(target: Target) -> CheckResult:
	facts = gathered(target, "error_logs", "the Error Log")
	if isinstance(facts, CheckResult):
		return facts
	after, before, new = facts["after"], facts["before"], facts["new_titles"]
	value = f"{after} in {facts['window_minutes']:.0f} min"
	baseline = f"{before} before"
	if new:
		return CheckResult(
			FAIL, f"{len(new)} new kind(s) of error since the deploy: {some(new)}", value, baseline=baseline
		)
	if after >= max(2 * before, MIN_RISE):
		return CheckResult(
			WARN, f"errors rose from {before} to {after} in the same time", value, baseline=baseline
		)
	return CheckResult(
		PASS, f"no new kind of error; {after} since, {before} before", value, baseline=baseline
	)
