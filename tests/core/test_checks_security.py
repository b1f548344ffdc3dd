from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.security import security_settings


def facts(**given):
	settings = {
		"production": True,
		"session_expiry": "08:00",
		"deny_multiple_sessions": False,
		"require_single_session": False,
		"developer_mode": False,
		"allow_tests": False,
		"default_admin_password": "",
	}
	return Target(extra={"security": {**settings, **given}})


def test_sound_settings_pass():
	result = security_settings(facts())
	assert (result.status, result.message, result.value) == (
		PASS,
		"no insecure setting found",
		"0 problem(s)",
	)


def test_every_problem_is_listed_in_one_message():
	result = security_settings(
		facts(
			session_expiry="170:00",
			require_single_session=True,
			developer_mode=True,
			allow_tests=True,
			default_admin_password="admin",
		)
	)
	assert result.status == FAIL
	assert result.message == (
		"the Administrator password is a well-known default; "
		"users may hold several sessions though Settings require one; "
		"developer mode is on in production; "
		"allow_tests is on in production: tests may run against its data"
	)
	assert result.value == "4 problem(s)"


def test_the_default_password_itself_is_never_shown():
	result = security_settings(facts(default_admin_password="Adm1nPassw0rd"))
	assert result.status == FAIL
	assert "Adm1nPassw0rd" not in repr(result)


def test_a_single_session_is_enforced_when_settings_require_it():
	assert security_settings(facts(require_single_session=True, deny_multiple_sessions=True)).status == PASS


def test_session_expiry_must_be_set_as_frappe_writes_it():
	assert security_settings(facts(session_expiry="170:00")).status == PASS
	assert security_settings(facts(session_expiry="06:00:00")).status == PASS
	assert security_settings(facts(session_expiry="")).message == (
		"session expiry is not set in System Settings (Frappe falls back to 240:00)"
	)
	assert security_settings(facts(session_expiry="a day")).message == "session expiry 'a day' is not hh:mm"


def test_development_sites_may_use_developer_mode_and_tests():
	relaxed = facts(production=False, developer_mode=True, allow_tests=True)
	assert security_settings(relaxed).status == PASS
	result = security_settings(facts(production=False, default_admin_password="admin"))
	assert (result.status, result.message) == (FAIL, "the Administrator password is a well-known default")


def test_unreadable_or_missing_facts():
	result = security_settings(Target(extra={"security": ConnectionError("db down")}))
	assert (result.status, result.message) == (ERROR, "the security settings could not be read: db down")
	assert security_settings(Target()).status == WARN
