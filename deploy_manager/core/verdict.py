"""Check results -> the guide's action.

| symptom          | a failing check of this kind means                  | action               |
|------------------|-----------------------------------------------------|----------------------|
| service_down     | the site does not answer (ping, login page, 503)    | Rollback immediately |
| critical         | it answers but is broken (new errors, dead workers) | Rollback             |
| performance      | response times more than the threshold worse        | Consider rollback    |
| minor            | something to mend (disk filling, a setting)         | Fix forward          |

A warning of any kind, or a check that could not run (error), is at most Fix forward: we do not roll
back on what we could not measure. All passing is Confirm. The worst action wins.
"""

from dataclasses import dataclass

from deploy_manager.core.checks import ERROR, FAIL, WARN, CheckResult

CONFIRM = "Confirm"
FIX_FORWARD = "Fix forward"
CONSIDER_ROLLBACK = "Consider rollback"
ROLLBACK = "Rollback"
ROLLBACK_IMMEDIATELY = "Rollback immediately"

# Worst last.
ACTIONS = (CONFIRM, FIX_FORWARD, CONSIDER_ROLLBACK, ROLLBACK, ROLLBACK_IMMEDIATELY)
SYMPTOMS = {
	"service_down": ROLLBACK_IMMEDIATELY,
	"critical": ROLLBACK,
	"performance": CONSIDER_ROLLBACK,
	"minor": FIX_FORWARD,
}
ROLLBACK_ACTIONS = (ROLLBACK, ROLLBACK_IMMEDIATELY)
# `verify` exit codes a pipeline gates on.
EXIT_CODES = {CONFIRM: 0, FIX_FORWARD: 0, CONSIDER_ROLLBACK: 1, ROLLBACK: 2, ROLLBACK_IMMEDIATELY: 2}


@dataclass(frozen=True)
class Verdict:
	action: str
	reason: str

	@property
	def exit_code(self) -> int:
		return EXIT_CODES[self.action]


def action_for(result: CheckResult) -> str:
	if result.status == FAIL:
		return SYMPTOMS[result.symptom]
	if result.status in (WARN, ERROR):
		return FIX_FORWARD
	return CONFIRM


def decide(results: list[CheckResult]) -> Verdict:
	if not results:
		return Verdict(FIX_FORWARD, "No checks ran")
	worst = max(ACTIONS.index(action_for(r)) for r in results)
	action = ACTIONS[worst]
	if action == CONFIRM:
		return Verdict(CONFIRM, f"All {len(results)} checks passed")
	culprits = [r for r in results if action_for(r) == action]
	return Verdict(action, "; ".join(f"{r.name}: {r.message}" for r in culprits))
