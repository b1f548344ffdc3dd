"""The deploy command: PREPARE, BACKUP, DEPLOY, then VERIFY, on the bench platform.

preflight -> maintenance on, scheduler paused -> verified backup -> fetch and check out -> requirements
-> migrate -> build -> clear cache -> flags back as they were -> restart -> post-deploy verification.
The site is closed before the backup, as `bench update` does: writes made while it runs would be lost
by a rollback to it. Each step's time and output go into the Deployment's log; a failing step makes
it Failed, naming the step, and puts the rollback plan in it. The migrate records into this
Deployment (patches, touched tables, a failing patch) instead of opening its own.
"""

import json
import sys
import time

import frappe
from frappe.utils import cint, now_datetime, time_diff_in_seconds

from deploy_manager.core import environment, gitrepo
from deploy_manager.core import plan as core
from deploy_manager.core.deployments import AppState, compare
from deploy_manager.core.plan import Move
from deploy_manager.core.verdict import EXIT_CODES, INCONCLUSIVE
from deploy_manager.deploy_manager.doctype.deploy_manager_settings.deploy_manager_settings import (
	get_settings,
)
from deploy_manager.deploy_manager.doctype.deployment import deployment as lifecycle
from deploy_manager.services import backups, bench_lock, closing, preflight, processes, recording, rollback
from deploy_manager.services.site_state import IN_DEPLOY, has_app, on_site, repo, snapshot_apps
from deploy_manager.services.steps import Steps

# `deploy` exits so when the code is deployed but nothing restarted the bench: not verified yet.
NOT_VERIFIED = 4
# What a verified site may be to let a bench-wide deploy go on.
GOOD = (lifecycle.MONITORING, lifecycle.CONFIRMED)


class Blocked(Exception):
	def __init__(self, decision, check: str):
		super().__init__(decision.summary())
		self.decision, self.check = decision, check


def resolve(requested: list[str]) -> tuple[list[Move], dict[str, str | None]]:
	"""What `--app APP[@REF]` asks for, fetched and resolved to commits; without --app, every app
	whose branch tracks an upstream goes to it."""
	installed = frappe.get_installed_apps()
	refs: dict[str, str | None] = {}
	for spec in requested:
		app, _, ref = spec.partition("@")
		if app not in installed:
			raise ValueError(f"{app} is not installed on {frappe.local.site}")
		refs[app] = ref or None
	if not requested:
		refs = {app: None for app in installed if _tracks_upstream(app)}
	moves = []
	for app, ref in refs.items():
		path = repo(app)
		if not gitrepo.is_repository(path):
			raise ValueError(f"{app} is not a git repository: it cannot be deployed by commit")
		try:
			fetched = gitrepo.fetch(path)
		except gitrepo.GitError as e:
			fetched = e
		try:
			target = gitrepo.resolve(path, ref)
		except gitrepo.GitError as e:
			raise ValueError(
				f"{app}: {e}" + (f" (fetch failed: {fetched})" if isinstance(fetched, Exception) else "")
			)
		if isinstance(fetched, Exception) and not gitrepo.is_fixed(path, ref):
			# A branch would resolve to what was fetched last time: maybe old code.
			raise ValueError(
				f"{app}: fetch failed ({fetched}); name a tag or commit to deploy without fetching"
			)
		moves.append(Move(app, gitrepo.read_state(path).commit, target))
	return moves, refs


def _tracks_upstream(app: str) -> bool:
	try:
		gitrepo.git(repo(app), "rev-parse", "--verify", "--quiet", "@{upstream}")
		return True
	except gitrepo.GitError:
		return False


def plan(moves: list[Move], refs: dict) -> core.Plan:
	platform = get_settings().platform
	return core.deploy_plan(tuple(moves), refs, frappe.local.site, platform, processes.restart_command())


def execute(
	moves: list[Move], refs: dict, override_reason: str = "", force: bool = False
) -> tuple[str, bool]:
	"""Deploy on the bench platform; returns the Deployment's name and whether the bench restarted
	(only then does the new code answer, to be verified). Raises Blocked when the preflight blocks and
	no reason overrides it, ValueError when refused before anything changed."""
	_check_deployable(moves, plan(moves, refs))
	with bench_lock.one_change_at_a_time(f"a deploy of {frappe.local.site}") as claim:
		decision, check = preflight.run(moves, override_reason, deploying=True)
		frappe.db.commit()
		if not decision.go:
			raise Blocked(decision, check.name)
		deploy = Deploy(moves, refs, force, claim)
		return deploy.run(check, decision), deploy.restarted


def _check_deployable(moves: list[Move], the_plan: core.Plan):
	if not the_plan.runnable:
		raise ValueError(
			f"on {the_plan.platform} a deploy rolls out an image; follow the plan:\n{the_plan.text()}"
		)
	if not any(m.current != m.target for m in moves):
		raise ValueError("nothing to deploy: every app is already at its target commit")


def execute_bench(
	sites: list[str], requested: list[str], canary: str | None, override_reason: str = "", force: bool = False
) -> tuple[str, list[str], int]:
	"""`--site all`: the code moves once, with the canary's deploy; the other sites are closed until
	they migrate, one at a time, each verified; the canary is verified before the rest. A failure or
	a rollback verdict stops it: if the canary stops it, the code goes back (installed, built, the bench
	restarted) and the other sites open again unmigrated. Returns (the Bench Deployment, one line per
	site, exit code)."""
	if not processes.restart_command():
		raise ValueError(
			f"{processes.NOTHING_RESTARTS}: a bench-wide deploy verifies each site on the new code, which"
			" runs only once the bench restarts"
		)
	canary = canary or sites[0]
	if canary not in sites:
		raise ValueError(f"the canary {canary} is not one of the sites: {', '.join(sites)}")
	order = [canary, *(site for site in sites if site != canary)]
	without = []
	for site in order:
		with on_site(site):
			if site == canary and frappe.get_site_config().get("maintenance_mode"):
				raise ValueError(f"the canary {canary} is in maintenance mode: it could not be verified")
			if not has_app():
				without.append(site)
			elif reopened := closing.reopen_abandoned():
				print(f"{site}: an earlier deploy or rollback was interrupted: {reopened}", file=sys.stderr)
	if without:
		raise ValueError(
			f"deploy_manager is not installed on {', '.join(without)}: it could neither back up, record nor"
			" verify them; install it there, or deploy site by site"
		)
	with (
		bench_lock.one_change_at_a_time("a bench-wide deploy", site=canary) as claim,
		closing.interruptible(),
	):
		# Read under the lock: what the code is now, and where it goes.
		with on_site(canary):
			moves, refs = resolve(requested)
			the_plan = plan(moves, refs)
			before = snapshot_apps()
		_check_deployable(moves, the_plan)
		checks = {}
		for site in order:
			with on_site(site):
				decision, check = preflight.run(moves, override_reason, deploying=True)
				frappe.db.commit()
			if not decision.go:
				raise Blocked(decision, f"{check.name} on {site}")
			checks[site] = (decision, check.name)
		with on_site(canary):
			record = _bench_record(order, moves, before)
		claim(f"{record} (a bench-wide deploy)")
		return record, *_deploy_sites(order, moves, refs, force, before, checks, record)


def _bench_record(order: list[str], moves: list[Move], before: list[AppState]) -> str:
	targets = {m.app: m.target for m in moves}
	doc = frappe.get_doc(
		{
			"doctype": "Bench Deployment",
			"status": "In Progress",
			"strategy": "Canary",
			"platform": core.BENCH,
			"canary": order[0],
			"started_at": now_datetime(),
			"triggered_by": environment.operator(),
			"sites": [{"site": site, "status": "Waiting"} for site in order],
		}
	)
	doc.set_apps(
		compare(before, [AppState(s.app, s.version, s.branch, targets.get(s.app, s.commit)) for s in before])
	)
	doc.add_log(f"Canary {order[0]} first, then {', '.join(order[1:]) or 'no other site'}")
	doc.insert(ignore_permissions=True)
	frappe.db.commit()
	return doc.name


def _deploy_sites(order, moves, refs, force, before, checks, record) -> tuple[list[str], int]:
	lines, code, closed = [], 0, []
	link = f"{record} on {order[0]}"
	try:
		# Closed before the canary moves the code: until each has migrated, none may serve it.
		for site in order[1:]:
			with on_site(site):
				closing.close(record)
			closed.append(site)
		for n, site in enumerate(order):
			with on_site(site):
				decision, check = checks[site]
				deploy = Deploy(moves, refs, force, before=before, move_code=n == 0, bench_deployment=link)
				try:
					name = deploy.run(frappe.get_doc("Verification Check", check), decision)
					status, note = verify(name), ""
					code = max(code, exit_code(name))
				except RuntimeError as e:
					name, status, note, code = (
						deploy.doc.name if deploy.doc else "",
						lifecycle.FAILED,
						str(e),
						1,
					)
				if n == 0 and status not in GOOD and not deploy.code_back:
					# The others have not migrated: they go back to the code they ran, whole.
					note = f"{note} {put_code_back(moves, {s.app: s for s in before}, restart=True)}".strip()
			lines.append(f"{site}: {name} {status}")
			# A site that was in maintenance before is verified once it is opened: not a stop.
			stop = (
				""
				if status in GOOD or (n and status == lifecycle.AWAITING_VERIFICATION)
				else f"{site} is {status}: stopped"
			)
			if stop and n == 0:
				stop += "; the code went back and the other sites were opened again unmigrated"
			elif stop and order[n + 1 :]:
				stop += f"; not migrated: {', '.join(order[n + 1 :])} (opened again, on the new code)"
			_update_record(order[0], record, site, name, status, " ".join(filter(None, (note, stop))))
			if stop:
				lines.append(stop)
				code = max(code, 1)
				break
	except BaseException:
		code = max(code, 1)
		raise
	finally:
		for site in closed:
			try:
				with on_site(site):
					closing.reopen()
			except Exception as e:
				lines.append(f"{site}: could not be opened again ({e}): see its site_config.json")
		with on_site(order[0]):
			_finish_record(record, "Stopped" if code else "Completed")
	return lines, code


def _update_record(canary: str, record: str, site: str, deployment: str, status: str, note: str):
	with on_site(canary):
		doc = frappe.get_doc("Bench Deployment", record)
		row = next(row for row in doc.sites if row.site == site)
		row.deployment, row.status, row.note = deployment, status, note[:500]
		doc.add_log(f"{site}: {deployment} {status}" + (f": {note}" if note else ""))
		doc.save(ignore_permissions=True)
		frappe.db.commit()


def _finish_record(record: str, status: str):
	doc = frappe.get_doc("Bench Deployment", record)
	doc.status, doc.finished_at = status, now_datetime()
	doc.add_log(f"{status}")
	doc.save(ignore_permissions=True)
	frappe.db.commit()


class Deploy(Steps):
	"""One site's deploy. In a bench-wide deploy only the canary's moves the code (`move_code`); the
	others migrate onto it, and all record the apps as they were before the canary moved them."""

	def __init__(
		self,
		moves: list[Move],
		refs: dict,
		force: bool,
		claim=None,
		before: list[AppState] | None = None,
		move_code: bool = True,
		bench_deployment: str = "",
	):
		super().__init__(None)
		self.claim = claim or (lambda what: None)
		self.moves = [m for m in moves if m.current != m.target]
		self.refs, self.force, self.move_code = refs, force, move_code
		self.bench_deployment = bench_deployment
		self.code_back = ""
		self.restarted = False
		installed = frappe.get_installed_apps()
		self.before = {s.app: s for s in before or snapshot_apps() if s.app in installed}

	def run(self, check, decision) -> str:
		targets = {m.app: m.target for m in self.moves}
		after = [
			AppState(s.app, s.version, s.branch, targets.get(s.app, s.commit)) for s in self.before.values()
		]
		self.doc = lifecycle.start(
			"Deploy Command",
			compare(list(self.before.values()), after),
			platform=core.BENCH,
			strategy="Canary" if self.bench_deployment else "In-place",
			bench_deployment=self.bench_deployment,
		)
		self.doc.add_log(f"Deploy started by {self.doc.triggered_by}: {decision.summary()} ({check.name})")
		self.doc.insert(ignore_permissions=True)
		check.db_set("deployment", self.doc.name)
		frappe.db.commit()
		self.claim(f"{self.doc.name} (a deploy)")
		try:
			with closing.closed_site(self.doc.name):
				try:
					self.deploy_steps()
				except BaseException:
					if self.move_code and not self.database_touched:
						# The database was not touched: the code goes back to what runs with it, before
						# the site opens again.
						self.code_back = put_code_back(self.moves, self.before)
					raise
		except BaseException as e:
			# BaseException: Ctrl-C and SIGTERM fail the deploy too; the flags are already back.
			raise RuntimeError(f"{self.doc.name}: {self.fail(self.current or 'maintenance on', e)}") from e
		self.doc.add_log(closing.flags_now())
		try:
			if self.move_code:
				try:
					self.step("restart", processes.restart)
					self.restarted = True
				except Exception as e:
					# The deploy itself is done: a process manager that refuses is a warning.
					self.doc.add_log(
						f"restart: not done ({e}); restart the bench's web server and workers by hand"
					)
			self.finish()
		except BaseException as e:
			self.record_failure(
				f"{self.current} interrupted after the migrate: {e}; restart the bench by hand"
			)
			raise RuntimeError(f"{self.doc.name}: {self.doc.failure_reason}") from e
		return self.doc.name

	def deploy_steps(self):
		self.step("maintenance on", lambda: "maintenance mode on, scheduler paused")
		self.step("backup", self.backup)
		for move in self.moves if self.move_code else ():
			self.step(f"check out {move.app}", lambda m=move: self.checkout(m))
		for move in self.moves if self.move_code else ():
			self.step(f"requirements of {move.app}", lambda m=move: processes.install(m.app))
			self.step(
				f"node packages of {move.app}",
				lambda m=move: processes.node_packages(m.app, m.current, m.target),
			)
		self.step("migrate", self.migrate, touches_database=True)
		for move in self.moves if self.move_code else ():
			self.step(f"build {move.app}", lambda m=move: processes.build(m.app))
		self.step("clear cache", lambda: processes.bench("clear-cache"))

	def backup(self):
		record = backups.take("Pre-deploy", deployment=self.doc.name)
		if record.status != "Verified":
			raise RuntimeError(f"the backup {record.name} is {record.status}: {record.status_message}")
		self.doc.backup = record.name
		return f"{record.name} taken and verified"

	def checkout(self, move: Move) -> str:
		return gitrepo.move_to(repo(move.app), self.refs.get(move.app), move.target, self.force)

	def migrate(self) -> str:
		failed = True
		try:
			output = processes.bench("migrate", env={IN_DEPLOY: self.doc.name})
			failed = False
			return output
		finally:
			# The migrate wrote into this Deployment: its patches, tables, and a failure's traceback.
			# Our connection sat idle through the migrate, which may have ended it.
			frappe.db.connect()
			try:
				recording.settle_adopted(self.doc.name, failed)
				frappe.db.commit()
			except Exception:
				if not failed:
					raise  # else the migrate's own failure is the one to report
			self.doc.reload()

	def fail(self, step: str, error: BaseException) -> str:
		"""Record the failure; returns what to tell the operator: the reason and the rollback plan."""
		found = self.doc.failure_reason if self.doc.status == lifecycle.FAILED else ""
		if not self.database_touched:
			way_back = f"{self.code_back} Nothing to roll back: the database was not touched.".strip()
			plan = ""
		else:
			way_back, plan = self.rollback_plan()
		reason = (
			f"{step} failed: {error}" + (f" ({found})" if found and found not in str(error) else "") + "."
			f" Backup: {self.doc.backup or 'none was taken'}. {closing.flags_now()} {way_back}"
		)
		# The site runs what it ran before when nothing reached the database and the code is back.
		put_back = not self.database_touched and all(
			gitrepo.read_state(repo(m.app)).commit == self.before[m.app].commit for m in self.moves
		)
		# The plan goes in the log, a Code field: a Small Text would escape its <placeholders>.
		self.record_failure(reason, error, plan, code_put_back=int(put_back))
		return f"{reason}\n{plan}".strip()

	def rollback_plan(self) -> tuple[str, str]:
		"""(the way back in a sentence, the plan's steps)."""
		try:
			candidate = rollback.find(f"before-{self.doc.name}")
		except Exception as e:
			return f"No rollback candidate: {e}", ""
		if not candidate.restorable:
			return f"{candidate.name} cannot be restored: {'; '.join(candidate.problems)}", ""
		command = f"bench --site {frappe.local.site} deploy-manager rollback {candidate.name} --yes"
		return f"Roll back with `{command}`; the plan is in the log.", "Rollback plan:\n" + rollback.plan(
			candidate
		).text()

	def finish(self):
		# No reload: every step saved this document, and what is only in memory yet (the flags put
		# back, a restart that failed) belongs in its log.
		before = [
			AppState(r.app, r.from_version, r.from_branch, r.from_commit, r.dirty) for r in self.doc.apps
		]
		self.doc.set_apps(compare(before, snapshot_apps()))
		self.doc.finish("Deploy", "; post-deploy verification next")
		self.doc.save(ignore_permissions=True)
		frappe.db.commit()


def put_code_back(moves: list[Move], before: dict[str, AppState], restart: bool = False) -> str:
	"""The apps as they were before the deploy moved them: checked out, installed and built again (and
	with `restart`, after a deploy that restarted the bench, what runs is the code from before too)."""
	problems = []
	for move in moves:
		state = before[move.app]
		try:
			gitrepo.return_to(repo(move.app), state.branch, state.commit)
			processes.install(move.app)
			processes.build(move.app)
		except Exception as e:
			problems.append(f"{move.app} ({e})")
	if problems:
		return f"Could not put the code back: {'; '.join(problems)}: see their working trees."
	try:
		if restart:
			processes.restart()
	except Exception as e:
		return f"The apps are checked out, installed and built as they were; restart the bench by hand ({e})."
	return "The apps are checked out, installed and built as they were."


def verify(name: str) -> str:
	"""The post-deploy verification, in a child process that runs the code just deployed; an
	inconclusive verdict is checked again at its time, in a child too, so that the command ends with a
	verdict. A site left in maintenance (as it was before) is verified once it reopens."""
	try:
		processes.bench(
			"execute",
			"deploy_manager.services.monitoring.verify_deployment",
			"--kwargs",
			json.dumps({"deployment": name}),
		)
		for _ in range(cint(get_settings().failures_in_a_row)):
			frappe.db.rollback()  # a fresh snapshot: the child wrote the verdict
			verdict, due = frappe.db.get_value("Deployment", name, ["verdict", "next_check_at"])
			if verdict != INCONCLUSIVE or not due:
				break
			if _judged_meanwhile(name, due):
				continue
			# The queued re-check did not come in time: run it here; taken meanwhile, it returns.
			processes.bench(
				"execute",
				"deploy_manager.services.monitoring.recheck",
				"--kwargs",
				json.dumps({"deployment": name, "due": str(due)}),
			)
	except Exception as e:
		doc = frappe.get_doc("Deployment", name)
		doc.add_log(f"post-deploy verification could not run now ({e}); the five-minute sweep runs it")
		doc.save(ignore_permissions=True)
		frappe.db.commit()
	frappe.db.rollback()
	return frappe.db.get_value("Deployment", name, "status")


def _judged_meanwhile(name: str, due) -> bool:
	"""Wait until `due` for the queued re-check (which usually comes first and takes the time it is
	due, with a lease); True when it judged the deployment meanwhile."""
	while time_diff_in_seconds(due, now_datetime()) > 0:
		time.sleep(2)
		frappe.db.rollback()
		if frappe.db.get_value("Deployment", name, "next_check_at") != due:
			# Taken: wait for its judgement, which sets a new time (or none) when it is done.
			taken = frappe.db.get_value("Deployment", name, "next_check_at")
			while taken and frappe.db.get_value("Deployment", name, "next_check_at") == taken:
				if time_diff_in_seconds(now_datetime(), taken) > 0:
					return False  # the lease ran out: the re-check died
				time.sleep(2)
				frappe.db.rollback()
			return True
	return False


def exit_code(name: str) -> int:
	verdict = frappe.db.get_value("Deployment", name, "verdict")
	return EXIT_CODES.get(verdict, 0)
