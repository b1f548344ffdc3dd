"""Check results -> the guide's action.

| symptom          | a failing check of this kind means                  | action               |
|------------------|-----------------------------------------------------|----------------------|
| service_down     | the site does not answer (ping, login page, 503)    | Rollback immediately |
| critical         | it answers but is broken (new errors, dead workers) | Rollback             |
| performance      | response times more than the threshold worse        | Consider rollback    |
| minor            | something to mend (disk filling, a setting)         | Fix forward          |

A warning of any kind, or a check that could not run (error), is at most Fix forward: we do not roll
back on what we could not measure. All passing is Confirm. The worst action wins.

A transient signal (the scheduler, workers, queues, response times) can fail for a moment after a
restart and recover by itself: its failure counts once it has failed that many runs in a row. Until
then, when it alone would make the verdict worse, the verdict is Inconclusive and the caller checks
again soon. The site not answering (service_down) always counts at once: that is "Rollback
immediately".
"""

from dataclasses import dataclass

from deploy_manager.core.checks import ERROR, FAIL, WARN, CheckResult

CONFIRM = "Confirm"
FIX_FORWARD = "Fix forward"
CONSIDER_ROLLBACK = "Consider rollback"
ROLLBACK = "Rollback"
ROLLBACK_IMMEDIATELY = "Rollback immediately"
# Not one of the guide's actions: a transient failure seen once, to be checked again.
INCONCLUSIVE = "Inconclusive"

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
# Inconclusive exits 1, as Consider rollback: a pipeline must not go on, nor roll back, on it.
EXIT_CODES = {
	CONFIRM: 0,
	FIX_FORWARD: 0,
	CONSIDER_ROLLBACK: 1,
	ROLLBACK: 2,
	ROLLBACK_IMMEDIATELY: 2,
	INCONCLUSIVE: 1,
}


@dataclass(frozen=True)
class Verdict:
	action: str
	reason: str
	# The checks whose failure waits for a repeat (names): check again before acting on them.
	recheck: tuple[str, ...] = ()

	@property
	def exit_code(self) -> int:
		return EXIT_CODES[self.action]


def action_for(result: CheckResult) -> str:
	if result.status == FAIL:
		return SYMPTOMS[result.symptom]
	if result.status in (WARN, ERROR):
		return FIX_FORWARD
	return CONFIRM


def unconfirmed(result: CheckResult, failed_before: dict[str, int], in_a_row: int) -> bool:
	"""A transient failure that has not yet failed `in_a_row` runs running (this one included)."""
	return (
		result.status == FAIL
		and result.transient
		and result.symptom != "service_down"
		and failed_before.get(result.name, 0) + 1 < in_a_row
	)


def decide(
	results: list[CheckResult], failed_before: dict[str, int] | None = None, in_a_row: int = 1
) -> Verdict:
	"""The worst action of the results; `failed_before` (check name -> runs in a row it failed just
	before this one) and `in_a_row` say which transient failures count yet."""
	if not results:
		return Verdict(FIX_FORWARD, "No checks ran")
	failed_before = failed_before or {}
	waits = [unconfirmed(r, failed_before, in_a_row) for r in results]
	waiting = [r for r, wait in zip(results, waits, strict=True) if wait]
	counted = _worst([r for r, wait in zip(results, waits, strict=True) if not wait], len(results))
	if waiting and ACTIONS.index(_worst(waiting, len(results)).action) > ACTIONS.index(counted.action):
		reason = "; ".join(
			f"{r.name}: {r.message} (failed {failed_before.get(r.name, 0) + 1} of {in_a_row} "
			"runs in a row needed: checking again)"
			for r in waiting
		)
		return Verdict(INCONCLUSIVE, reason, tuple(r.name for r in waiting))
	return counted


def _worst(results: list[CheckResult], ran: int) -> Verdict:
	if not results:
		return Verdict(CONFIRM, f"All {ran} checks passed")
	action = ACTIONS[max(ACTIONS.index(action_for(r)) for r in results)]
	if action == CONFIRM:
		return Verdict(CONFIRM, f"All {ran} checks passed")
	culprits = [r for r in results if action_for(r) == action]
	return Verdict(action, "; ".join(f"{r.name}: {r.message}" for r in culprits))
