"""Against the real MariaDB and Redis of this machine (.ci/run starts them), and wrong ports."""

import os

import pytest
import redis
from test_checks_http import free_port

from deploy_manager.core.checks import FAIL, PASS, WARN, Secret, Target
from deploy_manager.core.checks.dependencies import database, redis_apart, redis_instances

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def test_database_answers_with_its_round_trip():
	result = database(Target(extra={"db": MARIADB}))
	assert result.status in (PASS, WARN)
	assert result.value.endswith(" ms")


def test_database_on_a_wrong_port_fails_saying_why():
	result = database(Target(extra={"db": {**MARIADB, "port": free_port()}}, request_timeout=2))
	assert result.status == FAIL
	assert result.message.startswith("database does not answer: Can't connect")


def test_database_with_a_wrong_password_fails():
	result = database(Target(extra={"db": {**MARIADB, "user": "dm_nobody", "password": "wrong"}}))
	assert result.status == FAIL
	assert "Access denied" in result.message


def test_redis_answers():
	result = redis_instances(Target(extra={"redis": {"redis_cache": "redis://127.0.0.1:6379"}}))
	assert result.status == PASS
	assert result.message == "redis_cache answer"


def test_one_redis_down_fails_and_is_named():
	urls = {"redis_cache": "redis://127.0.0.1:6379", "redis_queue": f"redis://127.0.0.1:{free_port()}"}
	result = redis_instances(Target(extra={"redis": urls}, request_timeout=2))
	assert result.status == FAIL
	assert result.message.startswith("Redis does not answer: redis_queue (")
	assert "redis_cache" not in result.message


def test_no_redis_configured_is_a_warning():
	assert redis_instances(Target()).status == WARN


def test_redis_with_users_is_pinged_with_its_credentials():
	"""Frappe's `use_rq_auth`: the queue's Redis has a user of the bench's; a wrong password fails."""
	admin = redis.Redis(host="127.0.0.1", port=6379)
	user = f"dm-test-{os.getpid()}"
	admin.acl_setuser(user, enabled=True, passwords=["+s3cret"], commands=["+ping"], keys=[])
	try:
		url = "redis://127.0.0.1:6379"
		good = {"redis_queue": {"url": url, "username": user, "password": Secret("s3cret")}}
		bad = {"redis_queue": {"url": url, "username": user, "password": Secret("wrong")}}
		assert redis_instances(Target(extra={"redis": good})).status == PASS
		result = redis_instances(Target(extra={"redis": bad}))
		assert result.status == FAIL
		assert "s3cret" not in result.message and "wrong" not in result.message
	finally:
		admin.acl_deluser(user)
		admin.close()


def test_database_over_its_socket_when_the_site_sets_db_socket():
	socket_path = "/run/mysqld/mysqld.sock"
	if not os.path.exists(socket_path):
		pytest.skip(f"no MariaDB socket at {socket_path}")
	# The host is never dialled: the socket is used.
	db = {**MARIADB, "host": "no-such-host.invalid", "unix_socket": socket_path}
	assert database(Target(extra={"db": db})).status == PASS


def test_cache_and_queue_on_one_server_warn_whatever_their_database_numbers():
	shared = Target(
		extra={
			"redis": {
				"redis_cache": "redis://localhost:6379/0",
				"redis_queue": {"url": "redis://127.0.0.1/1"},
			}
		}
	)
	result = redis_apart(shared)
	assert result.status == WARN
	assert "127.0.0.1:6379" in result.message and "bench build" in result.message


def test_cache_and_queue_apart_pass():
	apart = Target(
		extra={"redis": {"redis_cache": "redis://127.0.0.1:13000", "redis_queue": "redis://127.0.0.1:11000"}}
	)
	assert redis_apart(apart).status == PASS
	assert redis_apart(Target(extra={"redis": {"redis_cache": "redis://127.0.0.1:13000"}})).status == PASS
