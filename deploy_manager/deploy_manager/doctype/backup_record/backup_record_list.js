// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

const BACKUP_INDICATORS = {
	"Not Verified": "gray",
	Verified: "green",
	Corrupt: "red",
	Missing: "red",
	Unverifiable: "orange",
};

frappe.listview_settings["Backup Record"] = {
	add_fields: ["status"],
	get_indicator(doc) {
		return [__(doc.status), BACKUP_INDICATORS[doc.status] || "gray", "status,=," + doc.status];
	},
};
