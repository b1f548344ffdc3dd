from deploy_manager.core.plan import BENCH, DOCKER, KUBERNETES, candidate, plan, restart_command

A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_a_candidate_with_a_verified_backup_and_known_commits_is_restorable():
	found = candidate("DEP-1", {"frappe": A, "shop": B}, {"frappe": A, "shop": C}, "BKP-1", "Verified")
	assert found.restorable
	assert found.name == "before-DEP-1"
	assert [(m.app, m.current, m.target) for m in found.changed] == [("shop", C, B)]


def test_every_reason_a_candidate_cannot_be_restored_is_given():
	found = candidate(
		"DEP-2",
		{"frappe": A, "nogit": "", "gone": B},
		{"frappe": A, "nogit": "", "gone": C, "newer": A},
		"BKP-2",
		"Corrupt",
		has_commit=lambda app, commit: app != "gone",
	)
	assert not found.restorable
	assert found.problems == (
		"its backup BKP-2 is Corrupt, not Verified",
		f"gone: commit {B[:10]} is no longer in its repository",
		"newer was not installed then: it would have to be uninstalled by hand",
		"nogit: its commit then is unknown (no git)",
	)
	assert candidate("DEP-3", {"frappe": A}, {"frappe": A}, None, None).problems == (
		"no backup was taken before it",
	)


def test_the_bench_plan_follows_the_guide_and_names_each_commit():
	found = candidate("DEP-1", {"shop": B}, {"shop": C}, "BKP-1", "Verified")
	restart = restart_command("supervisor", "frappe-bench")
	text = plan(found, "erp.example.com", BENCH, restart, with_files=True).text()
	order = [
		"safety backup",
		"Maintenance mode on",
		f"git -C apps/shop checkout --detach {B}",
		"env/bin/pip install -e apps/shop",
		"Restore the database and files",
		"bench --site erp.example.com migrate",
		"supervisorctl restart frappe-bench-web: frappe-bench-workers:",
		"back as they were",
		"deploy-manager verify --phase post",
	]
	positions = [text.index(step) for step in order]
	assert positions == sorted(positions)


def test_without_a_process_manager_the_restart_is_an_instruction():
	found = candidate("DEP-1", {"shop": B}, {"shop": C}, "BKP-1", "Verified")
	assert "restart `bench start`" in plan(found, "s", BENCH).text()
	systemd = restart_command("systemd", "erp", sudo=True)
	assert (
		"sudo systemctl restart erp-web.target erp-workers.target" in plan(found, "s", BENCH, systemd).text()
	)


def test_the_restart_is_this_benchs_own_as_bench_restarts_it():
	assert restart_command("supervisor", "b1") == ["supervisorctl", "restart", "b1-web:", "b1-workers:"]
	assert restart_command("supervisor", "b1", sudo=True)[:2] == ["sudo", "supervisorctl"]
	custom = restart_command("supervisor", "b1", "sudo /usr/local/bin/restart-bench 'b 1'")
	assert custom == ["sudo", "/usr/local/bin/restart-bench", "b 1"]
	assert restart_command("", "b1") == []


def test_images_are_rolled_back_by_their_platform_not_by_this_command():
	found = candidate("DEP-1", {"shop": B}, {"shop": C}, "BKP-1", "Verified")
	docker, kubernetes = plan(found, "s", DOCKER), plan(found, "s", KUBERNETES)
	assert not docker.runnable and not kubernetes.runnable
	assert "previous image tag" in docker.text()
	assert "helm rollback" in kubernetes.text() and "kubectl rollout undo" in kubernetes.text()
