"""The watchdog's crontab entry, written with python-crontab into a real crontab file and read back
by a fresh parse, as cron would: one tagged entry per bench, others left alone."""

from crontab import CronTab

from deploy_manager.core import cron

FOREIGN = "17 3 * * * /usr/local/bin/nightly-report --all\n"
OTHER_BENCH = "*/5 * * * * cd /srv/other/sites && run # deploy_manager watchdog: /srv/other\n"


def tab(path) -> CronTab:
	return CronTab(tabfile=str(path))


def test_enable_writes_one_tagged_entry_and_twice_is_still_one(tmp_path):
	path = tmp_path / "crontab"
	path.write_text(FOREIGN + OTHER_BENCH)
	cron.enable(tab(path), "/home/frappe/frappe-bench", "/home/frappe/frappe-bench/env/bin/python")
	entry = cron.enable(
		tab(path), "/home/frappe/frappe-bench", "/home/frappe/frappe-bench/env/bin/python", every=2
	)
	assert entry.schedule == "*/2 * * * *" and entry.enabled
	assert entry.line() in path.read_text().splitlines()
	assert entry.command == (
		"cd /home/frappe/frappe-bench/sites && /home/frappe/frappe-bench/env/bin/python -m"
		" frappe.utils.bench_helper frappe deploy-manager watchdog run"
		" >> /home/frappe/frappe-bench/logs/deploy_manager_watchdog.log 2>&1"
	)
	text = path.read_text()
	assert text.count("deploy_manager watchdog: /home/frappe/frappe-bench") == 1
	assert FOREIGN in text and OTHER_BENCH.strip() in text
	assert cron.entries(tab(path), "/srv/other") != []


def test_disable_removes_only_this_benchs_entry(tmp_path):
	path = tmp_path / "crontab"
	path.write_text(FOREIGN + OTHER_BENCH)
	cron.enable(tab(path), "/home/frappe/frappe-bench", "/usr/bin/python3")
	assert cron.disable(tab(path), "/home/frappe/frappe-bench") == 1
	assert cron.disable(tab(path), "/home/frappe/frappe-bench") == 0
	assert cron.entries(tab(path), "/home/frappe/frappe-bench") == []
	assert path.read_text() == FOREIGN + OTHER_BENCH


def test_paths_with_spaces_are_quoted_for_the_shell(tmp_path):
	path = tmp_path / "crontab"
	path.write_text("")
	entry = cron.enable(tab(path), "/srv/my bench", "/srv/my bench/env/bin/python")
	assert entry.command.startswith("cd '/srv/my bench/sites' && '/srv/my bench/env/bin/python' -m")


def test_an_entry_made_twice_by_hand_is_made_one(tmp_path):
	path = tmp_path / "crontab"
	line = "*/9 * * * * old command # deploy_manager watchdog: /b\n"
	path.write_text(line + line)
	cron.enable(tab(path), "/b", "/b/env/bin/python")
	assert len(cron.entries(tab(path), "/b")) == 1
	assert cron.entries(tab(path), "/b")[0].schedule == "*/5 * * * *"


def test_every_is_minutes_of_an_hour(tmp_path):
	path = tmp_path / "crontab"
	path.write_text("")
	for every in (0, 60):
		try:
			cron.enable(tab(path), "/b", "/b/env/bin/python", every=every)
		except ValueError as e:
			assert "1 to 59" in str(e)
		else:
			raise AssertionError(f"every={every} accepted")
	assert path.read_text() == ""
