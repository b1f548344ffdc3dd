// The watchdog's schedule and this site's last run, on the Deploy Manager workspace.
const COLORS = { noticed: "red", repaired: "orange", waiting: "yellow", clear: "green" };
const $ = (selector) => root_element.querySelector(selector);

frappe
	.call({ method: "deploy_manager.api.watchdog_status", type: "GET" })
	.then(({ message }) => {
		const { schedules, last_run } = message;
		$(".dm-schedule").textContent = schedules.length
			? __("cron: {0}", [schedules.join(", ")])
			: __("not in cron: bench deploy-manager watchdog enable");
		if (!last_run) {
			$(".dm-last").textContent = __("Never run on this site.");
			return;
		}
		// The browser's clock against a UTC time: right whatever the time zones of site and browser.
		const ran = new Date(last_run.ran_at);
		const minutes = Math.max(0, Math.round((Date.now() - ran.getTime()) / 60000));
		$(".dm-last").textContent = __("Last run {0} min ago ({1})", [minutes, ran.toLocaleString()]);
		if (last_run.check) {
			const link = document.createElement("a");
			link.href = `/app/verification-check/${encodeURIComponent(last_run.check)}`;
			link.textContent = __("its Verification Check");
			$(".dm-last").append(": ", link);
		}
		for (const finding of last_run.findings) {
			const item = document.createElement("li");
			const pill = document.createElement("span");
			pill.className = `indicator-pill ${COLORS[finding.status] || "gray"}`;
			pill.textContent = __(frappe.utils.to_title_case(finding.status));
			const text = document.createElement("span");
			text.textContent = finding.finding;
			item.append(pill, text);
			$(".dm-findings").append(item);
		}
	})
	.catch(() => {
		$(".dm-last").textContent = __("The watchdog's state could not be read.");
	});
