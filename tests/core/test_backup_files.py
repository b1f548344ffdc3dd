import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from deploy_manager.core.backups import (
	CORRUPT,
	MISSING,
	UNVERIFIABLE,
	VERIFIED,
	compare_counts,
	inside,
	scan_dump,
	sha256_of,
	verify_config,
	verify_database,
	verify_tar,
)

SITE_DB = "_d52f72436a4d17b3"
KEY = "2yvarW8N4YKoWyJJ23VA3E6o6BIVrhg8NZC5pDmI0Cc="
REAL_BACKUPS = Path("/home/frappe/frappe-bench/sites/dm-test.localhost/private/backups")
HEADER = (
	b"-- begin frappe metadata\n-- [frappe]\n-- version = 15.55.1\n-- branch = version-15\n"
	b"-- end frappe metadata\n-- \n"
)
# Values that would fool a counter splitting rows on "),(" or quotes without reading strings.
TRICKY = [
	"a),(b",
	"'),('",
	"it's",
	"C:\\temp\\",
	"back\\'slash",
	'say "hi"',
	"line\nbreak\r\n",
	"ünïcødé ✓ 日本",
	"(",
	"),",
	");",
	"NUL\0byte",
]
TABLES = {
	"tabToDo": [("todo-1", "Buy milk", 0), ("todo-2", "a),(b", 1), ("todo-3", None, 2)],
	"tabComment": [(f"c{i}", text, i) for i, text in enumerate(TRICKY)],
	"tabNote Seen By": [],
	"tabSingles": [("System Settings", "country", "India")],
}


def sql(value) -> str:
	"""A value as mariadb-dump writes it."""
	if value is None:
		return "NULL"
	if isinstance(value, int):
		return str(value)
	escapes = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\0": "\\0"}
	return "'" + "".join(escapes.get(c, c) for c in value) + "'"


def mariadb_dump(tables=TABLES, database=SITE_DB, complete=True, one_line=()) -> bytes:
	"""A dump laid out as mariadb-dump 10.11 lays it out; tables in `one_line` the older way."""
	lines = [
		"/*M!999999\\- enable the sandbox mode */ ",
		"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)",
		"--",
		f"-- Host: 127.0.0.1    Database: {database}",
		"-- ------------------------------------------------------",
		"-- Server version\t10.11.19-MariaDB-0+deb12u1",
		"",
		"/*!40101 SET NAMES utf8mb4 */;",
		"",
		"DROP SEQUENCE IF EXISTS `web_form_list_column_id_seq`;",
		"CREATE SEQUENCE `web_form_list_column_id_seq` start with 1 minvalue 1 increment by 1 nocache;",
	]
	for table, rows in tables.items():
		lines += [
			"--",
			f"-- Table structure for table `{table}`",
			"--",
			"",
			f"DROP TABLE IF EXISTS `{table}`;",
			f"CREATE TABLE `{table}` (",
			"  `name` varchar(140) NOT NULL,",
			"  `value` longtext DEFAULT NULL,",
			"  `idx` int(8) NOT NULL DEFAULT 0,",
			"  PRIMARY KEY (`name`)",
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;",
			"",
			f"LOCK TABLES `{table}` WRITE;",
			f"/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;",
		]
		values = ["(" + ",".join(sql(v) for v in row) + ")" for row in rows]
		if values and table in one_line:
			lines.append(f"INSERT INTO `{table}` VALUES " + ",".join(values) + ";")
		elif values:
			lines.append(f"INSERT INTO `{table}` VALUES")
			lines += [v + "," for v in values[:-1]] + [values[-1] + ";"]
		lines += [f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;", "UNLOCK TABLES;"]
	if complete:
		lines += ["/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;", "", "-- Dump completed on 2026-11-26 18:25:34"]
	return ("\n".join(lines) + "\n").encode()


def backup(folder: Path, dump: bytes | None = None, name="20261126_132534-dm-test_localhost-database.sql.gz"):
	"""A database backup as Frappe writes it: the header's gzip member, then the dump's."""
	path = folder / name
	path.write_bytes(gzip.compress(HEADER, mtime=0) + gzip.compress(dump or mariadb_dump(), mtime=0))
	return path


def sha256(path: Path) -> str:
	return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256_of_matches_hashlib_over_several_chunks(tmp_path):
	path = tmp_path / "blob"
	path.write_bytes(os.urandom(3 * 2**20 + 5))
	assert sha256_of(path) == sha256(path)


def test_scan_counts_rows_whatever_the_strings_hold():
	facts = scan_dump(io.BytesIO(HEADER + mariadb_dump(one_line={"tabComment"})), count_rows=True)
	assert facts.frappe_header
	assert facts.database == SITE_DB
	assert facts.tables == list(TABLES)
	assert facts.sequences == ["web_form_list_column_id_seq"]
	assert facts.rows == {table: len(rows) for table, rows in TABLES.items()}
	assert facts.completed


def test_scan_counts_one_insert_per_row_and_leaves_rows_uncounted_unless_asked():
	dump = (
		HEADER
		+ b"CREATE TABLE `tabX` (\nINSERT INTO `tabX` VALUES (1,'),(');\nINSERT INTO `tabX` VALUES (2,'\\\\');\n"
	)
	assert scan_dump(io.BytesIO(dump), count_rows=True).rows == {"tabX": 2}
	assert scan_dump(io.BytesIO(dump)).rows == {}


def test_good_backup_is_verified_with_its_sha256_and_rows(tmp_path):
	path = backup(tmp_path)
	result = verify_database(path, expected_tables=["tabToDo"], database=SITE_DB, count_rows=True)
	assert result.status == VERIFIED
	assert result.message == "4 tables, 16 rows, dump complete"
	assert result.sha256 == sha256(path)
	assert result.details == {
		"tables": list(TABLES),
		"database": SITE_DB,
		"rows": {"tabToDo": 3, "tabComment": len(TRICKY), "tabNote Seen By": 0, "tabSingles": 1},
	}


def test_sequences_count_as_expected_tables(tmp_path):
	result = verify_database(backup(tmp_path), expected_tables=["tabToDo", "web_form_list_column_id_seq"])
	assert result.status == VERIFIED
	assert "rows" not in result.details


def test_truncated_gzip_ends_early(tmp_path):
	path = backup(tmp_path)
	data = path.read_bytes()
	path.write_bytes(data[: len(data) * 2 // 3])
	result = verify_database(path)
	assert (result.status, result.message) == (
		CORRUPT,
		"the compressed data ends early: the file was cut short",
	)
	assert result.sha256 == sha256(path)


def test_bytes_changed_in_the_dumps_member_are_corruption(tmp_path):
	header = gzip.compress(HEADER, mtime=0)
	# Values that compress little, and always the same, so the changed bytes land alike on every run.
	values = {f"tab{n}": [(str(n), hashlib.sha256(bytes([n])).hexdigest(), n)] for n in range(30)}
	path = backup(tmp_path, mariadb_dump(values))
	data = bytearray(path.read_bytes())
	middle = (len(header) + len(data)) // 2
	data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
	path.write_bytes(data)
	result = verify_database(path)
	assert result.status == CORRUPT
	assert result.message.startswith("the compressed data is corrupted (")
	assert result.sha256 == sha256(path)


def test_dump_that_stops_before_its_end_is_incomplete(tmp_path):
	result = verify_database(backup(tmp_path, mariadb_dump(complete=False)))
	assert result.status == CORRUPT
	assert "stops before its '-- Dump completed' line" in result.message


def test_tables_missing_from_the_dump_are_named(tmp_path):
	expected = ["tabToDo", *(f"tabMissing{n}" for n in range(7))]
	result = verify_database(backup(tmp_path), expected_tables=expected)
	assert result.status == CORRUPT
	assert result.message == (
		"7 table(s) missing from the dump: tabMissing0, tabMissing1, tabMissing2, tabMissing3, "
		"tabMissing4 and 2 more"
	)
	assert result.details == {"missing": [f"tabMissing{n}" for n in range(7)]}


def test_another_sites_dump_is_refused(tmp_path):
	result = verify_database(backup(tmp_path, mariadb_dump(database="_0123456789abcdef")), database=SITE_DB)
	assert result.status == CORRUPT
	assert (
		result.message == f"it is a dump of database _0123456789abcdef, not of this site's database {SITE_DB}"
	)


def test_dump_without_frappes_header_is_not_a_frappe_backup(tmp_path):
	path = tmp_path / "dump.sql.gz"
	path.write_bytes(gzip.compress(mariadb_dump()))
	assert verify_database(path).message == "it has no Frappe metadata header, so it is not a Frappe backup"


@pytest.mark.parametrize(
	("content", "message"),
	[
		(
			b"-- plain SQL, never compressed\n",
			"it is not gzip-compressed, so it is not a Frappe database backup",
		),
		(b"", "the file is empty"),
	],
)
def test_file_that_is_not_gzip_is_corrupt(tmp_path, content, message):
	path = tmp_path / "20261126_132534-dm-test_localhost-database.sql.gz"
	path.write_bytes(content)
	result = verify_database(path)
	assert (result.status, result.message, result.sha256) == (CORRUPT, message, sha256(path))


def test_missing_files(tmp_path):
	for verify in (verify_database, verify_tar, verify_config):
		result = verify(tmp_path / "gone")
		assert (result.status, result.message) == (MISSING, f"no backup file at {tmp_path / 'gone'}")


@pytest.fixture(scope="module")
def gnupg(tmp_path_factory):
	"""A GnuPG home of the tests' own; the agent gpg starts in it is stopped at the end."""
	home = tmp_path_factory.mktemp("gnupg")
	home.chmod(0o700)
	with pytest.MonkeyPatch.context() as patch:
		patch.setenv("GNUPGHOME", str(home))
		yield home
		subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=False)


def encrypt(path: Path, name: str) -> Path:
	"""Encrypted as Frappe does it, then renamed as Frappe names it."""
	command = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", KEY, "-c", str(path)]
	subprocess.run(command, check=True, capture_output=True)
	return Path(f"{path}.gpg").rename(path.parent / name)


@pytest.fixture(scope="module")
def encrypted(gnupg, tmp_path_factory):
	folder = tmp_path_factory.mktemp("encrypted")
	return encrypt(backup(folder), "20261126_132534-dm-test_localhost-database-enc.sql.gz")


def test_encrypted_backup_is_verified_with_its_key(encrypted):
	result = verify_database(encrypted, database=SITE_DB, passphrase=KEY, count_rows=True)
	assert (result.status, result.message) == (VERIFIED, "4 tables, 16 rows, dump complete")
	assert result.sha256 == sha256(encrypted)


def test_encrypted_backup_cannot_be_verified_without_its_key(encrypted, tmp_path):
	unnamed = tmp_path / "20261126_132534-dm-test_localhost-database.sql.gz"
	unnamed.write_bytes(encrypted.read_bytes())
	for path in (encrypted, unnamed):
		result = verify_database(path)
		assert (result.status, result.message) == (
			UNVERIFIABLE,
			"it is encrypted and no backup encryption key was given",
		)


def test_encrypted_backup_with_a_wrong_key_is_unverifiable(encrypted):
	result = verify_database(encrypted, passphrase="not-the-key")
	assert (result.status, result.message) == (
		UNVERIFIABLE,
		"the backup encryption key given does not decrypt it",
	)
	assert result.sha256 == sha256(encrypted)


def test_damaged_encrypted_backup_is_corrupt(encrypted, tmp_path):
	data = bytearray(encrypted.read_bytes())
	data[len(data) // 2] ^= 0xFF
	damaged = tmp_path / encrypted.name
	damaged.write_bytes(data)
	result = verify_database(damaged, passphrase=KEY)
	assert result.status == CORRUPT
	assert result.message.startswith("the encrypted file is damaged: gpg says ")


def test_encrypted_backup_without_gpg_is_unverifiable(encrypted, tmp_path, monkeypatch):
	monkeypatch.setenv("PATH", str(tmp_path))
	result = verify_database(encrypted, passphrase=KEY)
	assert (result.status, result.message) == (
		UNVERIFIABLE,
		"gpg is not installed, so the encrypted backup cannot be read",
	)


@pytest.fixture
def site_files(tmp_path) -> Path:
	"""A tar of a site's private files, the second one large enough to cut inside."""
	folder = tmp_path / "dm-test.localhost" / "private" / "files"
	folder.mkdir(parents=True)
	(folder / "invoice.pdf").write_bytes(os.urandom(700))
	(folder / "photo.jpg").write_bytes(os.urandom(5000))
	(folder / "notes.txt").write_text("ünïcødé\n")
	path = tmp_path / "20261126_132534-dm-test_localhost-private-files.tar"
	with tarfile.open(path, "w") as archive:
		archive.add(tmp_path / "dm-test.localhost", arcname="dm-test.localhost")
	return path


def header_offsets(path: Path) -> dict[str, int]:
	with tarfile.open(path) as archive:
		return {m.name.rpartition("/")[2]: m.offset for m in archive.getmembers()}


def test_good_tar_and_tgz_are_verified(site_files, gnupg):
	compressed = site_files.with_suffix(".tgz")
	compressed.write_bytes(gzip.compress(site_files.read_bytes()))
	encrypted = encrypt(compressed, "20261126_132534-dm-test_localhost-private-files-enc.tgz")
	for path, key in ((site_files, None), (compressed, None), (encrypted, KEY)):
		result = verify_tar(path, passphrase=key)
		assert (result.status, result.message, result.details) == (VERIFIED, "3 files", {"files": 3})
		assert result.sha256 == sha256(path)


def test_tar_cut_inside_a_file_is_cut_short(site_files):
	offsets = header_offsets(site_files)
	data = site_files.read_bytes()
	site_files.write_bytes(data[: offsets["photo.jpg"] + 512 + 2000])
	result = verify_tar(site_files)
	assert result.status == CORRUPT
	assert (
		result.message == "the archive is cut short: it ends inside dm-test.localhost/private/files/photo.jpg"
	)


def test_tar_cut_between_files_is_cut_short(site_files):
	data = site_files.read_bytes()
	site_files.write_bytes(data[: max(header_offsets(site_files).values())])
	result = verify_tar(site_files)
	assert result.status == CORRUPT
	assert result.message.startswith("the archive is cut short: it ends after ")


def test_tar_with_a_damaged_header_is_damaged(site_files):
	offset = max(header_offsets(site_files).values())
	data = bytearray(site_files.read_bytes())
	data[offset + 10 : offset + 20] = b"XXXXXXXXXX"
	site_files.write_bytes(data)
	result = verify_tar(site_files)
	assert result.status == CORRUPT
	assert result.message.startswith("the archive is damaged: the header after ")


def test_tgz_cut_short_or_corrupted(site_files):
	data = gzip.compress(site_files.read_bytes(), mtime=0)
	path = site_files.with_suffix(".tgz")
	path.write_bytes(data[:-4])
	assert verify_tar(path).message == "the compressed data ends early: the file was cut short"
	path.write_bytes(data[:-8] + b"\0\0\0\0" + data[-4:])
	assert verify_tar(path).message.startswith("the compressed data is corrupted (CRC check failed")


def test_file_that_is_not_a_tar_is_corrupt(tmp_path):
	path = tmp_path / "files.tar"
	path.write_bytes(b"not an archive at all\n" * 100)
	result = verify_tar(path)
	assert result.status == CORRUPT
	assert result.message.startswith("it is not a tar archive, or a damaged one (")


def test_config_good_and_bad(tmp_path):
	path = tmp_path / "20261126_132534-dm-test_localhost-site_config_backup.json"
	path.write_text(json.dumps({"db_name": SITE_DB, "db_password": "secret"}, indent=1))
	assert (verify_config(path).status, verify_config(path).message) == (VERIFIED, "2 settings")
	assert verify_config(path).sha256 == sha256(path)
	path.write_text('{"db_name": "_d52f72436a4d17b3",')
	assert verify_config(path).status == CORRUPT
	assert verify_config(path).message.startswith("it is not valid JSON (")
	path.write_text("[1, 2]")
	assert verify_config(path).status == CORRUPT


def test_inside_keeps_user_paths_in_their_folder(tmp_path):
	root = tmp_path / "backups"
	root.mkdir()
	(root / "a.sql.gz").write_bytes(b"")
	(tmp_path / "secret").write_text("password")
	(root / "escape").symlink_to(tmp_path / "secret")
	(root / "alias").symlink_to(root / "a.sql.gz")
	assert inside(root / "a.sql.gz", root) == root / "a.sql.gz"
	assert inside("a.sql.gz", root) == root / "a.sql.gz"
	assert inside(root / "alias", root) == root / "a.sql.gz"
	for path in (root / ".." / "secret", "../secret", root / "escape", tmp_path / "backups-old" / "x"):
		with pytest.raises(ValueError, match="is outside"):
			inside(path, root)


def test_compare_counts_names_each_difference():
	recorded = {"tabToDo": 120, "tabNote": 4, "tabGone": 3, "tabSame": 9}
	restored = {"tabToDo": 118, "tabNote": 4, "tabSame": 9, "tabNew": 1}
	assert compare_counts(recorded, restored) == [
		"tabGone: 3 at backup, missing after restore",
		"tabNew: not in the backup, 1 restored",
		"tabToDo: 120 at backup, 118 restored",
	]
	assert compare_counts(recorded, recorded) == []


def newest_real_backup() -> Path | None:
	"""The newest full database backup of the test site, when this machine has its bench."""
	dumps = sorted(REAL_BACKUPS.glob("*-database.sql.gz")) if REAL_BACKUPS.is_dir() else []
	full = [path for path in dumps if "-partial-database" not in path.name]
	return full[-1] if full else None


@pytest.mark.skipif(newest_real_backup() is None, reason="no Frappe backup on this machine")
def test_newest_real_backup_is_verified():
	path = newest_real_backup()
	config = path.with_name(path.name.replace("-database.sql.gz", "-site_config_backup.json"))
	database = json.loads(config.read_text())["db_name"] if config.exists() else None
	result = verify_database(path, database=database, count_rows=True)
	assert result.status == VERIFIED, result.message
	assert result.sha256 == sha256(path)
	# mariadb-dump 10.11 writes each row on a line of its own, and no other line starts with "(".
	tables = rows = 0
	with gzip.open(path) as dump:
		for line in dump:
			tables += line.startswith(b"CREATE TABLE `")
			rows += line.startswith(b"(")
	assert len(result.details["tables"]) == tables
	assert sum(result.details["rows"].values()) == rows


def test_select_tables_keeps_the_settings_and_only_the_named_tables():
	from deploy_manager.core.backups import select_tables

	dump = [
		b"/*!40101 SET NAMES utf8mb4 */;\n",
		b"-- Table structure for table `tabA`\n",
		b"CREATE TABLE `tabA` (x int);\n",
		b"INSERT INTO `tabA` VALUES\n",
		b"(1);\n",
		b"-- Table structure for table `tab``B`\n",
		b"CREATE TABLE `tab``B` (x int);\n",
		b"-- Temporary table structure for view `vC`\n",
		b"CREATE VIEW ...;\n",
		b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n",
		b"-- Dump completed on 2026-11-26 18:25:34\n",
	]
	assert list(select_tables(dump, {"vC"})) == [dump[0], *dump[7:]]
	# Once every table named is in, the rest is not read.
	assert list(select_tables(iter(dump), {"tab`B"})) == [dump[0], dump[5], dump[6]]
