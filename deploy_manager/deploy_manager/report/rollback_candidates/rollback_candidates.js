// Copyright (c) 2026, deploy_manager developers and contributors
// For license information, please see license.txt

frappe.query_reports["Rollback Candidates"] = {
	filters: [
		{
			fieldname: "restorable_only",
			label: __("Restorable Only"),
			fieldtype: "Check",
			default: 1,
		},
	],
};
