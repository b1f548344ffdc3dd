"""What a person sees after `scripts/demo`, in a real browser (Playwright driving Debian's Chromium):
logging in lands on the Deploy Manager workspace, never on Frappe's setup wizard, and the workspace
shows the watchdog's last run.

Run by scripts/test after it has run scripts/demo; DEPLOY_MANAGER_DEMO_URL names the site
(http://dm-demo.localhost, which Chromium resolves to loopback itself), and
DEPLOY_MANAGER_DEMO_CREDENTIALS the file with its Administrator's password."""

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

URL = os.environ.get("DEPLOY_MANAGER_DEMO_URL", "http://dm-demo.localhost")
# scripts/demo gives the Administrator a password of its own and keeps it beside the site.
CREDENTIALS = Path(
	os.environ.get(
		"DEPLOY_MANAGER_DEMO_CREDENTIALS",
		"/home/frappe/frappe-bench/sites/dm-demo.localhost/private/demo-administrator-password",
	)
)
SHOTS = Path(os.environ.get("DEPLOY_MANAGER_SCREENSHOTS", "/tmp/deploy_manager_screenshots"))


@pytest.fixture(scope="module")
def page():
	chromium = shutil.which("chromium")
	if not chromium:
		pytest.fail("Debian's chromium is needed: apt-get install chromium")
	with sync_playwright() as playwright:
		# As root (CI), Chromium runs only without its sandbox.
		browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
		try:
			yield browser.new_page(viewport={"width": 1366, "height": 900})
		finally:
			browser.close()


def test_logging_in_lands_on_the_workspace_not_the_setup_wizard(page):
	page.goto(f"{URL}/login", timeout=60_000)
	page.fill("#login_email", "Administrator")
	page.fill("#login_password", CREDENTIALS.read_text().strip())
	page.click(".btn-login")
	page.wait_for_url(re.compile(r"/app/.+"), timeout=60_000)
	page.wait_for_selector(".page-head .title-text", timeout=60_000)
	# The workspace itself, not only its title: its header and a shortcut to the Deployments.
	page.get_by_text("Deployments of this site").wait_for(timeout=60_000)
	page.locator(".shortcut-widget-box", has_text="Deployment").first.wait_for(timeout=60_000)
	# The watchdog's block: its last run (scripts/demo ran it once) and what it found.
	block = page.locator(".custom-block-widget-box")
	block.get_by_text(re.compile(r"Last run \d+ min ago")).wait_for(timeout=60_000)
	assert block.locator(".indicator-pill").count() >= 1
	SHOTS.mkdir(parents=True, exist_ok=True)
	page.screenshot(path=str(SHOTS / "demo-landing.png"))
	assert "setup-wizard" not in page.url, page.url
	assert page.url.rstrip("/").endswith("/app/deploy-manager"), page.url
	assert page.inner_text(".page-head .title-text").strip() == "Deploy Manager"
