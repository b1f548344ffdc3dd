"""Rollback candidates and the plans that deploy and roll back, per platform (the guide's tables).

A candidate is an earlier state the site can return to: the state just before a recorded deployment,
made of the app commits it moved from and the Verified backup taken before it ran (its pre-deploy
backup). It is restorable only when every commit is known and still in its repository and the backup
is Verified.
"""

import shlex
from dataclasses import dataclass, field

BENCH, DOCKER, KUBERNETES = "Bench", "Docker", "Kubernetes"


@dataclass(frozen=True)
class Move:
	app: str
	current: str  # commit checked out now
	target: str  # commit to return to ("" when unknown)


@dataclass(frozen=True)
class Candidate:
	deployment: str  # the deployment whose earlier state this is
	backup: str
	backup_taken_at: str
	moves: tuple[Move, ...]
	problems: tuple[str, ...] = ()

	@property
	def name(self) -> str:
		return f"before-{self.deployment}"

	@property
	def restorable(self) -> bool:
		return not self.problems

	@property
	def changed(self) -> tuple[Move, ...]:
		return tuple(m for m in self.moves if m.current != m.target)


def candidate(
	deployment: str,
	from_commits: dict[str, str],
	current: dict[str, str],
	backup: str | None,
	backup_status: str | None,
	backup_taken_at: str = "",
	has_commit=lambda app, commit: True,
) -> Candidate:
	"""The state before `deployment`: apps back to `from_commits` (`current` is what runs now),
	database from `backup`. `has_commit(app, commit)` says whether a repository still holds it."""
	problems = []
	if not backup:
		problems.append("no backup was taken before it")
	elif backup_status != "Verified":
		problems.append(f"its backup {backup} is {backup_status or 'unknown'}, not Verified")
	moves = []
	for app in sorted(set(current) | set(from_commits)):
		target, now = from_commits.get(app, ""), current.get(app, "")
		if app not in from_commits:
			problems.append(f"{app} was not installed then: it would have to be uninstalled by hand")
		elif not target:
			problems.append(f"{app}: its commit then is unknown (no git)")
		elif target != now and not has_commit(app, target):
			problems.append(f"{app}: commit {target[:10]} is no longer in its repository")
		moves.append(Move(app, now, target))
	return Candidate(deployment, backup or "", backup_taken_at, tuple(moves), tuple(problems))


@dataclass(frozen=True)
class Step:
	title: str
	commands: tuple[str, ...] = ()
	note: str = ""


@dataclass
class Plan:
	platform: str
	steps: list[Step] = field(default_factory=list)
	runnable: bool = True  # whether `rollback --yes` carries it out here

	def text(self) -> str:
		lines = []
		for n, step in enumerate(self.steps, 1):
			lines.append(f"{n}. {step.title}")
			lines += [f"     {command}" for command in step.commands]
			if step.note:
				lines.append(f"     ({step.note})")
		return "\n".join(lines)


def plan(
	candidate: Candidate, site: str, platform: str, restart: list[str] | None = None, with_files: bool = False
) -> Plan:
	"""The guide's rollback for this platform. `restart`: the bench's restart command (see
	restart_command), empty when nothing restarts it."""
	if platform == DOCKER:
		return Plan(
			DOCKER,
			[
				Step(
					"Redeploy the previous image tag (the one built from these commits)",
					_moves(candidate.changed),
				),
				Step(
					"Run a restore job in the backend container",
					(f"bench --site {site} restore <{candidate.backup} database file> --force",),
				),
				Step(
					"Migrate and clear cache",
					(f"bench --site {site} migrate", f"bench --site {site} clear-cache"),
				),
			],
			runnable=False,
		)
	if platform == KUBERNETES:
		return Plan(
			KUBERNETES,
			[
				Step(
					"Roll the deployment back",
					("helm rollback <release> <revision>", "or: kubectl rollout undo deployment/<backend>"),
				),
				Step(
					"Run a restore job",
					(f"bench --site {site} restore <{candidate.backup} database file> --force",),
				),
				Step("Migrate and clear cache in a job", (f"bench --site {site} migrate",)),
			],
			runnable=False,
		)
	changed = candidate.changed
	steps = [
		Step(
			"Take a fresh verified safety backup of the current state",
			(f"bench --site {site} deploy-manager backup",),
		),
		Step(
			"Maintenance mode on, scheduler paused",
			(f"bench --site {site} set-maintenance-mode on", f"bench --site {site} scheduler pause"),
		),
		Step(
			"Check out each app's commit",
			tuple(f"git -C apps/{m.app} checkout --detach {m.target}" for m in changed)
			or ("(no app moves)",),
		),
		Step(
			"Install requirements and build the apps that changed",
			tuple(
				c
				for m in changed
				for c in (f"env/bin/pip install -e apps/{m.app}", _yarn(m.app), f"bench build --app {m.app}")
			)
			or ("(nothing to install)",),
		),
		Step(
			"Restore the database" + (" and files" if with_files else ""),
			(f"bench --site {site} restore <{candidate.backup} database file> --force",),
		),
		Step("Migrate and clear cache", (f"bench --site {site} migrate", f"bench --site {site} clear-cache")),
		_restart(restart or []),
		Step(
			"Maintenance mode and scheduler back as they were",
			note="done even when a step fails",
		),
		Step("Post-deploy verification", (f"bench --site {site} deploy-manager verify --phase post",)),
	]
	return Plan(BENCH, steps)


def restart_command(restarter: str, bench_name: str, custom: str = "", sudo: bool = False) -> list[str]:
	"""How bench itself restarts this bench's web server and workers (never its Redis, never another
	bench's programs): `restarter` is "supervisor", "systemd" or "" (nothing runs it); `custom` is the
	bench config's supervisor_restart_cmd; `sudo` when the process manager refuses this user."""
	if restarter == "supervisor" and custom:
		return shlex.split(custom)
	prefix = ["sudo"] if sudo else []
	if restarter == "supervisor":
		return [*prefix, "supervisorctl", "restart", f"{bench_name}-web:", f"{bench_name}-workers:"]
	if restarter == "systemd":
		return [*prefix, "systemctl", "restart", f"{bench_name}-web.target", f"{bench_name}-workers.target"]
	return []


def _restart(restart: list[str]) -> Step:
	if restart:
		return Step("Restart the bench's web server and workers", (" ".join(restart),))
	return Step(
		"Restart the web server and workers",
		note="neither supervisor nor systemd runs this bench: restart `bench start` (or your process manager) by hand",
	)


def deploy_plan(
	moves: tuple[Move, ...],
	refs: dict[str, str | None],
	site: str,
	platform: str,
	restart: list[str] | None = None,
) -> Plan:
	"""The guide's DEPLOY for this platform: `moves` go from `current` to `target`; `refs` is what was
	asked for each app (None: its tracked branch)."""
	changed = tuple(m for m in moves if m.current != m.target)
	if platform in (DOCKER, KUBERNETES):
		rollout = (
			("docker compose pull", "docker compose up -d")
			if platform == DOCKER
			else ("helm upgrade <release> <chart> --set image.tag=<new tag>",)
		)
		return Plan(
			platform,
			[
				Step("Build and push an image with these commits", _moves(changed)),
				Step("Roll it out", rollout),
				Step("Migrate in a job", (f"bench --site {site} migrate",)),
				Step(
					"Post-deploy verification", (f"bench --site {site} deploy-manager verify --phase post",)
				),
			],
			runnable=False,
		)
	steps = [
		Step("Preflight: the PREPARE checklist", (f"bench --site {site} deploy-manager preflight",)),
		Step(
			"Maintenance mode on, scheduler paused",
			(f"bench --site {site} set-maintenance-mode on", f"bench --site {site} scheduler pause"),
		),
		Step("Take a verified backup: the rollback point", (f"bench --site {site} deploy-manager backup",)),
		Step(
			"Fetch and check out each app",
			tuple(_checkout(m, refs.get(m.app)) for m in changed) or ("(no app moves)",),
		),
		Step(
			"Install requirements, and node packages where package.json or yarn.lock changed",
			tuple(c for m in changed for c in (f"env/bin/pip install -e apps/{m.app}", _yarn(m.app)))
			or ("(nothing to install)",),
		),
		Step("Migrate", (f"bench --site {site} migrate",)),
		Step("Build assets", tuple(f"bench build --app {m.app}" for m in changed) or ("(nothing to build)",)),
		Step("Clear cache", (f"bench --site {site} clear-cache",)),
		Step(
			"Maintenance mode and scheduler back as they were",
			note="done even when a step fails",
		),
		_restart(restart or []),
		Step(
			"Post-deploy verification, then the monitoring window",
			(f"bench --site {site} deploy-manager verify --phase post",),
		),
	]
	return Plan(BENCH, steps)


def _yarn(app: str) -> str:
	return f"(cd apps/{app} && yarn install --check-files)"


def _checkout(move: Move, ref: str | None) -> str:
	if ref is None:
		return f"git -C apps/{move.app} merge --ff-only {move.target}"
	return f"git -C apps/{move.app} checkout {ref}  # {move.current[:10]} -> {move.target[:10]}"


def _moves(moves: tuple[Move, ...]) -> tuple[str, ...]:
	return tuple(f"{m.app}: {m.current[:10]} -> {m.target[:10]}" for m in moves) or ("(no app moves)",)
