import gzip
import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.backups import backups, newest_dump
from deploy_manager.core.clock import SiteClock

# The site's now, in the site's time zone (Frappe's naive times); the server runs in another.
NOW = datetime(2025, 3, 14, 12, 0, 0)
ZONE = "Asia/Kolkata"
# Far east and far west of any server: UTC+14 and UTC-11.
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "UTC")


def dump(folder, name, hours_old, zone=ZONE):
	"""A real gzip dump whose mtime is `hours_old` before NOW on the site's clock."""
	folder.mkdir(parents=True, exist_ok=True)
	path = folder / name
	with gzip.open(path, "wb") as f:
		f.write(b"-- begin frappe metadata\nCREATE TABLE `tabNote` (name varchar(140));\n")
	stamp = (NOW - timedelta(hours=hours_old)).replace(tzinfo=ZoneInfo(zone)).timestamp()
	os.utime(path, (stamp, stamp))
	return path


def facts(folder, record=None, max_age_hours=24.0, zone=ZONE):
	return Target(
		extra={
			"backups": {
				"folder": str(folder),
				"newest_record": record,
				"max_age_hours": max_age_hours,
				"now": NOW,
				"time_zone": zone,
			}
		}
	)


@pytest.mark.parametrize("zone", ZONES)
def test_a_file_is_as_old_on_the_sites_clock_in_any_time_zone(tmp_path, zone):
	"""A backup taken 20 minutes ago is 20 minutes old whatever the site's and the server's zones;
	one 30 hours old is stale (read in the server's zone it looked hours younger or older)."""
	dump(tmp_path / "new", "20250314_114000-shop_example_com-database.sql.gz", 1 / 3, zone)
	result = backups(facts(tmp_path / "new", zone=zone))
	assert (result.status, result.message) == (
		PASS,
		"newest backup 20 min old (20250314_114000-shop_example_com-database.sql.gz, 2025-03-14 11:40)",
	)
	dump(tmp_path / "old", "20250313_060000-shop_example_com-database.sql.gz", 30, zone)
	assert backups(facts(tmp_path / "old", zone=zone)).status == FAIL


def test_records_dated_ahead_of_now_are_told_apart(tmp_path):
	"""Taken before the site's time zone moved west, they are not counted as the newest."""
	target = facts(tmp_path / "gone", record=NOW - timedelta(hours=30))
	target.extra["backups"]["dated_ahead"] = 2
	result = backups(target)
	assert result.status == FAIL
	assert "2 Backup Record(s) dated ahead of now not counted" in result.message


def test_the_clock_turns_every_source_into_the_sites_time():
	east, west = SiteClock("Pacific/Kiritimati"), SiteClock("Pacific/Pago_Pago")
	moment = datetime(2025, 3, 14, 0, 30)  # UTC
	stamp = moment.replace(tzinfo=ZoneInfo("UTC")).timestamp()
	assert east.from_timestamp(stamp) == east.from_utc(moment) == datetime(2025, 3, 14, 14, 30)
	assert west.from_timestamp(stamp) == west.from_utc(moment) == datetime(2025, 3, 13, 13, 30)
	assert east.to_utc(datetime(2025, 3, 14, 14, 30)) == west.to_utc(datetime(2025, 3, 13, 13, 30)) == moment
	assert abs((east.to_utc(east.now()) - west.to_utc(west.now())).total_seconds()) < 5


def test_a_recent_dump_passes_naming_it(tmp_path):
	dump(tmp_path, "20250314_090000-shop_example_com-database.sql.gz", 3)
	dump(tmp_path, "20250313_090000-shop_example_com-database.sql.gz", 27)
	result = backups(facts(tmp_path))
	assert result.status == PASS
	assert result.message == (
		"newest backup 3 h old (20250314_090000-shop_example_com-database.sql.gz, 2025-03-14 09:00)"
	)
	assert (result.value, result.threshold) == ("3.0 h", "24 h")


def test_an_old_dump_fails(tmp_path):
	dump(tmp_path, "20250312_120000-shop_example_com-database.sql.gz", 48)
	result = backups(facts(tmp_path))
	assert result.status == FAIL
	assert result.message.endswith("over the 24 h allowed")
	assert result.value == "48.0 h"


def test_encrypted_and_plain_dumps_count_but_partial_ones_and_other_files_do_not(tmp_path):
	dump(tmp_path, "20250314_113000-shop_example_com-partial-database.sql.gz", 0.5)
	dump(tmp_path, "20250314_113000-shop_example_com-files.tar", 0.5)
	dump(tmp_path, "20250314_113000-shop_example_com-site_config_backup.json", 0.5)
	assert newest_dump(str(tmp_path), SiteClock(ZONE)) is None
	dump(tmp_path, "20250314_100000-shop_example_com-database-enc.sql.gz", 2)
	dump(tmp_path, "20250314_110000-shop_example_com-database.sql", 1)
	assert newest_dump(str(tmp_path), SiteClock(ZONE))[1] == "20250314_110000-shop_example_com-database.sql"


def test_a_recent_backup_record_counts_when_the_folder_is_old_or_gone(tmp_path):
	dump(tmp_path, "20250312_120000-shop_example_com-database.sql.gz", 48)
	result = backups(facts(tmp_path, record=NOW - timedelta(minutes=20)))
	assert (result.status, result.message) == (
		PASS,
		"newest backup 20 min old (Backup Record, 2025-03-14 11:40)",
	)
	assert backups(facts(tmp_path / "gone", record=NOW - timedelta(hours=30))).status == FAIL


def test_the_allowed_age_comes_from_the_facts(tmp_path):
	dump(tmp_path, "20250314_060000-shop_example_com-database.sql.gz", 6)
	assert backups(facts(tmp_path, max_age_hours=4)).status == FAIL
	result = backups(facts(tmp_path, max_age_hours=None))
	assert (result.status, result.threshold) == (PASS, "24 h")


def test_no_backup_anywhere_fails(tmp_path):
	result = backups(facts(tmp_path / "private" / "backups"))
	assert result.status == FAIL
	assert result.message == f"no backup found in {tmp_path}/private/backups nor any Backup Record"


def test_unreadable_or_missing_facts():
	result = backups(Target(extra={"backups": ConnectionError("db down")}))
	assert (result.status, result.message) == (ERROR, "the backups could not be read: db down")
	assert backups(Target()).status == WARN


def test_records_that_lost_their_files_fail_even_beside_a_recent_backup(tmp_path):
	now = datetime(2026, 11, 26, 12, 0)
	facts = {
		"folder": str(tmp_path),
		"newest_record": now,
		"missing": ["BKP-2026-00003"],
		"now": now,
		"time_zone": ZONE,
	}
	result = backups(Target(extra={"backups": facts}))
	assert result.status == FAIL
	assert "BKP-2026-00003 lost their files" in result.message
