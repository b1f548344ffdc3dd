import hashlib
import json

from deploy_manager.core.checks import ERROR, FAIL, PASS, WARN, Target
from deploy_manager.core.checks.migrations import migrations, out_of_sync


def write_doctype(app, module, name, **fields):
	"""<app>/<module>/doctype/<folder>/<folder>.json as Frappe lays it out; returns its md5."""
	folder = app / module / "doctype" / name.lower().replace(" ", "_")
	folder.mkdir(parents=True)
	path = folder / f"{folder.name}.json"
	path.write_text(json.dumps({"doctype": "DocType", "name": name, "module": module, **fields}, indent=1))
	return hashlib.md5(path.read_bytes()).hexdigest()


def make_app(tmp_path):
	app = tmp_path / "apps" / "shop" / "shop"
	hashes = {
		"Sales Order": write_doctype(app, "selling", "Sales Order"),
		"Customer": write_doctype(app, "selling", "Customer"),
		"Item": write_doctype(app, "stock", "Item"),
	}
	(app / "hooks.py").write_text("app_name = 'shop'\n")
	(app / "templates").mkdir()  # a folder that is not a module with DocTypes
	return app, hashes


def facts(apps, hashes, pending=(), skipped=(), failed="", lock_waits=()):
	return Target(
		extra={
			"migrations": {
				"pending": list(pending),
				"skipped": list(skipped),
				"failed": failed,
				"lock_waits": list(lock_waits),
				"apps": [str(a) for a in apps],
				"hashes": hashes,
			}
		}
	)


def test_everything_run_and_in_sync_passes(tmp_path):
	app, hashes = make_app(tmp_path)
	result = migrations(facts([app], hashes))
	assert result.status == PASS
	assert result.value == "0 pending, 0 skipped, 0 out of sync"


def test_a_doctype_changed_since_the_last_migrate_is_out_of_sync(tmp_path):
	app, hashes = make_app(tmp_path)
	path = app / "stock" / "doctype" / "item" / "item.json"
	path.write_text(json.dumps({"doctype": "DocType", "name": "Item", "fields": [{"fieldname": "sku"}]}))
	result = migrations(facts([app], hashes))
	assert result.status == FAIL
	assert result.message == "1 DocType(s) differ from the database: Item"


def test_the_name_comes_from_the_json_not_the_folder(tmp_path):
	app, hashes = make_app(tmp_path)
	hashes["Item"] = "0" * 32
	path = app / "stock" / "doctype" / "item" / "item.json"
	path.write_text(json.dumps({"doctype": "DocType", "name": "Stock Item"}))
	assert out_of_sync([str(app)], hashes) == []  # "Stock Item" has no stored hash
	hashes["Stock Item"] = "1" * 32
	assert out_of_sync([str(app)], hashes) == ["Stock Item"]


def test_doctypes_without_a_stored_hash_and_other_json_are_not_judged(tmp_path):
	app, hashes = make_app(tmp_path)
	write_doctype(app, "stock", "Warehouse")  # new: migrate has not stored its hash yet
	hashes["Customer"] = ""  # imported before Frappe stored hashes
	(app / "selling" / "doctype" / "customer" / "customer.json").write_text('{"doctype": "DocType"}')
	report = app / "selling" / "doctype" / "sales_report"
	report.mkdir()
	(report / "sales_report.json").write_text(json.dumps({"doctype": "Report", "name": "Sales Order"}))
	(app / "stock" / "doctype" / "item" / "item.py").write_text("# not the JSON\n")
	broken = app / "stock" / "doctype" / "broken"
	broken.mkdir()
	(broken / "broken.json").write_text("{not json")
	assert out_of_sync([str(app)], {**hashes, "Warehouse": None}) == []


def test_several_apps_are_all_read(tmp_path):
	app, hashes = make_app(tmp_path)
	other = tmp_path / "apps" / "crm" / "crm"
	hashes["Lead"] = write_doctype(other, "crm", "Lead")
	(other / "crm" / "doctype" / "lead" / "lead.json").write_text('{"doctype": "DocType", "name": "Lead"}')
	assert out_of_sync([str(app), str(other)], hashes) == ["Lead"]


def test_pending_patches_fail_naming_the_first_five(tmp_path):
	app, hashes = make_app(tmp_path)
	pending = [f"shop.patches.v1.p{n}" for n in range(7)]
	result = migrations(facts([app], hashes, pending=pending))
	assert result.status == FAIL
	assert result.message == (
		"7 patch(es) not run: shop.patches.v1.p0, shop.patches.v1.p1, shop.patches.v1.p2, "
		"shop.patches.v1.p3, shop.patches.v1.p4 and 2 more"
	)


def test_a_failed_migrate_fails_and_a_skipped_patch_is_still_told(tmp_path):
	app, hashes = make_app(tmp_path)
	result = migrations(
		facts(
			[app], hashes, skipped=["shop.patches.v1.fix"], failed="patch shop.patches.v1.add raised KeyError"
		)
	)
	assert result.status == FAIL
	assert result.message == (
		"the deployment's migrate failed: patch shop.patches.v1.add raised KeyError; "
		"1 patch(es) skipped in the deployment: shop.patches.v1.fix"
	)


def test_skipped_patches_alone_warn(tmp_path):
	app, hashes = make_app(tmp_path)
	result = migrations(facts([app], hashes, skipped=["shop.patches.v1.fix"]))
	assert (result.status, result.value) == (WARN, "0 pending, 1 skipped, 0 out of sync")


WAITED = (
	"migrate: waiting 0 s for a lock on _abc: waits: connection 7 (_abc@127.0.0.1:5001, db _abc: Query, 0 s,"
	" Waiting for table metadata lock): ALTER TABLE `tabToDo` ...; held by connection 5 (_abc@127.0.0.1:4000,"
	" db _abc: Sleep, 40 s, in an open transaction)"
)


def test_a_migrate_that_waited_for_a_lock_warns_naming_the_holder(tmp_path):
	app, hashes = make_app(tmp_path)
	ended = "migrate: ended the site's leftover connection 5 (...)"
	result = migrations(facts([app], hashes, lock_waits=[WAITED, ended]))
	assert result.status == WARN
	assert result.message.startswith("the deployment waited for database locks (2 notes): migrate: waiting")
	assert "held by connection 5 (_abc@127.0.0.1:4000" in result.message


def test_a_failed_migrate_is_not_told_twice_of_its_lock_wait(tmp_path):
	app, hashes = make_app(tmp_path)
	result = migrations(
		facts([app], hashes, failed="Migrate stopped by the lock guard: ...", lock_waits=[WAITED])
	)
	assert result.status == FAIL and "waited for database locks" not in result.message


def test_no_stored_hashes_at_all(tmp_path):
	app, _ = make_app(tmp_path)
	assert migrations(facts([app], None)).status == PASS


def test_unreadable_or_missing_facts():
	result = migrations(Target(extra={"migrations": ConnectionError("db down")}))
	assert (result.status, result.message) == (ERROR, "the migration state could not be read: db down")
	assert migrations(Target()).status == WARN
