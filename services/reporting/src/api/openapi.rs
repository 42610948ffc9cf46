//! The OpenAPI 3.1 document of the management API, served at `/api/openapi.json`. Tests
//! check that every operation here is routed (and nothing else is), and that answers
//! carry exactly the properties their schemas list.

use serde_json::{Map, Value, json};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page_of(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": { "type": "array", "items": schema_ref(item) },
            "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last." }
        }
    })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

fn path(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": schema })
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn nullable(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}

fn nullable_format(t: &str, format: &str) -> Value {
    json!({ "type": [t, "null"], "format": format })
}

fn page_params() -> Vec<Value> {
    vec![
        query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }), "Page size."),
        query("cursor", string(), "The `next_cursor` of the previous page."),
    ]
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

/// One operation. `ok` is (status, response schema or null for no body).
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (u16, Value),
}

fn operation(op: Op) -> (String, &'static str, Value) {
    let mut responses = Map::new();
    let ok = if op.ok.1.is_null() {
        json!({ "description": "Done." })
    } else {
        json!({ "description": "Done.", "content": { "application/json": { "schema": op.ok.1 } } })
    };
    responses.insert(op.ok.0.to_string(), ok);
    let error =
        |d: &str| json!({ "description": d, "content": { "application/json": { "schema": schema_ref("Error") } } });
    responses.insert("400".into(), error("The request is not valid."));
    responses.insert("401".into(), error("No valid bearer token."));
    if op.method != "GET" {
        responses.insert("403".into(), error("The reader role cannot change anything."));
        responses.insert("409".into(), error("The change conflicts with the current state."));
    }
    if op.path.contains('{') {
        responses.insert("404".into(), error("No such object."));
    }
    responses.insert("503".into(), error("The database or sync-worker is unavailable."));
    let mut o = json!({
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": format!("{}{}", op.method.to_lowercase(), op.path.replace("/api/v1", "").replace(['/', '{', '}', '-'], "_")),
        "parameters": op.params,
        "responses": responses,
    });
    if let Some(body) = op.body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": body } } });
    }
    (op.path.to_owned(), op.method, o)
}

fn operations() -> Vec<Op> {
    let computer_id = || path("computer_id", string());
    let group_id = || path("group_id", uuid());
    let update_id = || path("update_id", uuid());
    let rule_id = || path("rule_id", uuid());
    let computer_filters = || {
        let mut p = page_params();
        p.push(query("group_id", uuid(), "Members of this group or its subgroups."));
        p.push(query("downstream_server_id", uuid(), "Computers rolled up from this downstream server."));
        p.push(query("local", json!({ "type": "boolean" }), "true: only this server's own computers."));
        p.push(query("state", schema_ref("ComputerState"), "Overall state."));
        p.push(query("search", string(), "Part of the name or id, any letter case."));
        p
    };
    let with = |mut v: Vec<Value>, extra: Vec<Value>| {
        v.extend(extra);
        v
    };
    vec![
        Op {
            method: "GET",
            path: "/api/v1/computers",
            summary: "List computers by name",
            tag: "computers",
            params: computer_filters(),
            body: None,
            ok: (200, page_of("Computer")),
        },
        Op {
            method: "GET",
            path: "/api/v1/computers/{computer_id}",
            summary: "One computer with its status counts",
            tag: "computers",
            params: vec![computer_id()],
            body: None,
            ok: (200, schema_ref("Computer")),
        },
        Op {
            method: "DELETE",
            path: "/api/v1/computers/{computer_id}",
            summary: "Forget a computer (it comes back when it reports again)",
            tag: "computers",
            params: vec![computer_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "GET",
            path: "/api/v1/computers/{computer_id}/updates",
            summary: "A computer's per-update statuses",
            tag: "computers",
            params: with(
                vec![computer_id()],
                with(page_params(), vec![query("status", schema_ref("UpdateState"), "Only this status.")]),
            ),
            body: None,
            ok: (200, page_of("UpdateStatus")),
        },
        Op {
            method: "GET",
            path: "/api/v1/groups",
            summary: "List target groups by name (a tree through parent_group_id)",
            tag: "groups",
            params: page_params(),
            body: None,
            ok: (200, page_of("Group")),
        },
        Op {
            method: "POST",
            path: "/api/v1/groups",
            summary: "Create a target group",
            tag: "groups",
            params: vec![],
            body: Some(schema_ref("NewGroup")),
            ok: (201, schema_ref("Group")),
        },
        Op {
            method: "GET",
            path: "/api/v1/groups/{group_id}",
            summary: "One target group",
            tag: "groups",
            params: vec![group_id()],
            body: None,
            ok: (200, schema_ref("Group")),
        },
        Op {
            method: "PATCH",
            path: "/api/v1/groups/{group_id}",
            summary: "Rename or move a target group",
            tag: "groups",
            params: vec![group_id()],
            body: Some(schema_ref("GroupChange")),
            ok: (200, schema_ref("Group")),
        },
        Op {
            method: "DELETE",
            path: "/api/v1/groups/{group_id}",
            summary: "Delete a target group, its subgroups and their approvals",
            tag: "groups",
            params: vec![group_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "GET",
            path: "/api/v1/groups/{group_id}/computers",
            summary: "Computers in a group or its subgroups",
            tag: "groups",
            params: with(vec![group_id()], page_params()),
            body: None,
            ok: (200, page_of("Computer")),
        },
        Op {
            method: "POST",
            path: "/api/v1/groups/{group_id}/computers",
            summary: "Put computers in a group (server-side targeting)",
            tag: "groups",
            params: vec![group_id()],
            body: Some(schema_ref("Members")),
            ok: (200, object(&["added"], json!({ "added": { "type": "integer" } }))),
        },
        Op {
            method: "DELETE",
            path: "/api/v1/groups/{group_id}/computers/{computer_id}",
            summary: "Take a computer out of a group",
            tag: "groups",
            params: vec![group_id(), computer_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "GET",
            path: "/api/v1/updates",
            summary: "Search updates (latest revisions of software and drivers) by id",
            tag: "updates",
            params: with(
                page_params(),
                vec![
                    query("search", string(), "Part of the title or KB number."),
                    query("kb", string(), "KB number, with or without the KB prefix."),
                    query("classification", uuid(), "Classification id."),
                    query("product", uuid(), "Product id."),
                    query("approval", json!({ "enum": ["approved", "unapproved", "declined"] }), "Approval state."),
                ],
            ),
            body: None,
            ok: (200, page_of("Update")),
        },
        Op {
            method: "GET",
            path: "/api/v1/updates/{update_id}",
            summary: "One update with its approvals and status counts",
            tag: "updates",
            params: vec![
                update_id(),
                query("group_id", uuid(), "Count only computers of this group and its subgroups."),
            ],
            body: None,
            ok: (200, schema_ref("UpdateDetail")),
        },
        Op {
            method: "GET",
            path: "/api/v1/updates/{update_id}/eula",
            summary: "The update's license terms",
            tag: "updates",
            params: vec![update_id(), query("language", string(), "Language (default en).")],
            body: None,
            ok: (200, schema_ref("Eula")),
        },
        Op {
            method: "POST",
            path: "/api/v1/updates/{update_id}/eula/accept",
            summary: "Accept the update's license terms",
            tag: "updates",
            params: vec![update_id()],
            body: None,
            ok: (200, schema_ref("Eula")),
        },
        Op {
            method: "GET",
            path: "/api/v1/updates/{update_id}/approvals",
            summary: "The update's approvals, one per group at most",
            tag: "approvals",
            params: vec![update_id()],
            body: None,
            ok: (200, page_of("Approval")),
        },
        Op {
            method: "PUT",
            path: "/api/v1/updates/{update_id}/approvals/{group_id}",
            summary: "Approve for a group (keyed to the update: new revisions inherit it). An update with license terms needs them accepted (accept_eula) or answers 409",
            tag: "approvals",
            params: vec![update_id(), group_id()],
            body: Some(schema_ref("ApprovalRequest")),
            ok: (200, schema_ref("Approval")),
        },
        Op {
            method: "DELETE",
            path: "/api/v1/updates/{update_id}/approvals/{group_id}",
            summary: "Remove a group's own approval: the group inherits its parent group's again",
            tag: "approvals",
            params: vec![update_id(), group_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "POST",
            path: "/api/v1/updates/{update_id}/decline",
            summary: "Decline an update (every revision); its approvals go",
            tag: "approvals",
            params: vec![update_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "DELETE",
            path: "/api/v1/updates/{update_id}/decline",
            summary: "Take back a decline",
            tag: "approvals",
            params: vec![update_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "GET",
            path: "/api/v1/rules",
            summary: "List automatic approval rules",
            tag: "rules",
            params: page_params(),
            body: None,
            ok: (200, page_of("Rule")),
        },
        Op {
            method: "POST",
            path: "/api/v1/rules",
            summary: "Create a rule (it applies to revisions that arrive from now on)",
            tag: "rules",
            params: vec![],
            body: Some(schema_ref("RuleBody")),
            ok: (201, schema_ref("Rule")),
        },
        Op {
            method: "POST",
            path: "/api/v1/rules/apply",
            summary: "Apply rules now; also moves approvals to their update's newest revision and declines expired updates",
            tag: "rules",
            params: vec![],
            body: Some(schema_ref("ApplyRequest")),
            ok: (200, schema_ref("Applied")),
        },
        Op {
            method: "GET",
            path: "/api/v1/rules/{rule_id}",
            summary: "One rule",
            tag: "rules",
            params: vec![rule_id()],
            body: None,
            ok: (200, schema_ref("Rule")),
        },
        Op {
            method: "PUT",
            path: "/api/v1/rules/{rule_id}",
            summary: "Replace a rule",
            tag: "rules",
            params: vec![rule_id()],
            body: Some(schema_ref("RuleBody")),
            ok: (200, schema_ref("Rule")),
        },
        Op {
            method: "DELETE",
            path: "/api/v1/rules/{rule_id}",
            summary: "Delete a rule (its approvals stay)",
            tag: "rules",
            params: vec![rule_id()],
            body: None,
            ok: (204, Value::Null),
        },
        Op {
            method: "GET",
            path: "/api/v1/settings",
            summary: "Administrator settings",
            tag: "settings",
            params: vec![],
            body: None,
            ok: (200, schema_ref("Settings")),
        },
        Op {
            method: "PATCH",
            path: "/api/v1/settings",
            summary: "Change some settings (all are checked before any is written)",
            tag: "settings",
            params: vec![],
            body: Some(schema_ref("SettingsChange")),
            ok: (200, schema_ref("Settings")),
        },
        Op {
            method: "GET",
            path: "/api/v1/categories",
            summary: "Products and classifications the catalog knows",
            tag: "settings",
            params: with(
                page_params(),
                vec![query(
                    "type",
                    json!({ "enum": ["Company", "ProductFamily", "Product", "UpdateClassification"] }),
                    "Category type.",
                )],
            ),
            body: None,
            ok: (200, page_of("Category")),
        },
        Op {
            method: "GET",
            path: "/api/v1/sync/status",
            summary: "The running synchronisation, if any, and the last finished one",
            tag: "sync",
            params: vec![],
            body: None,
            ok: (200, schema_ref("SyncStatus")),
        },
        Op {
            method: "POST",
            path: "/api/v1/sync/start",
            summary: "Start a synchronisation with the upstream server now",
            tag: "sync",
            params: vec![],
            body: None,
            ok: (202, object(&["sync_id"], json!({ "sync_id": { "type": "integer" } }))),
        },
        Op {
            method: "GET",
            path: "/api/v1/sync/history",
            summary: "Past synchronisations, newest first",
            tag: "sync",
            params: page_params(),
            body: None,
            ok: (200, page_of("SyncRun")),
        },
        Op {
            method: "GET",
            path: "/api/v1/cleanup/runs",
            summary: "Cleanup runs, newest first, with what each job removed or declined",
            tag: "cleanup",
            params: page_params(),
            body: None,
            ok: (200, page_of("CleanupRun")),
        },
        Op {
            method: "POST",
            path: "/api/v1/cleanup/start",
            summary: "Start a cleanup run now (409 when one is running)",
            tag: "cleanup",
            params: vec![],
            body: None,
            ok: (202, object(&["run_id"], json!({ "run_id": { "type": "integer" } }))),
        },
        Op {
            method: "GET",
            path: "/api/v1/reports/updates",
            summary: "Status counts per update (GetSummariesPerUpdate), over approved or reported updates",
            tag: "reports",
            params: with(
                page_params(),
                vec![query("group_id", uuid(), "Only computers of this group and its subgroups.")],
            ),
            body: None,
            ok: (200, page_of("UpdateSummary")),
        },
        Op {
            method: "GET",
            path: "/api/v1/reports/computers",
            summary: "Status counts per computer (GetSummariesPerComputerTarget)",
            tag: "reports",
            params: computer_filters(),
            body: None,
            ok: (200, page_of("Computer")),
        },
        Op {
            method: "GET",
            path: "/api/v1/downstream-servers",
            summary: "Downstream servers and their last rollup",
            tag: "reports",
            params: page_params(),
            body: None,
            ok: (200, page_of("DownstreamServer")),
        },
    ]
}

fn schemas() -> Value {
    let counts = json!({
        "installed": { "type": "integer" }, "needed": { "type": "integer" }, "downloaded": { "type": "integer" },
        "failed": { "type": "integer" }, "installed_pending_reboot": { "type": "integer" },
        "not_applicable": { "type": "integer" }, "unknown": { "type": "integer" }
    });
    let count_names =
        ["installed", "needed", "downloaded", "failed", "installed_pending_reboot", "not_applicable", "unknown"];
    let computer = json!({
        "computer_id": string(), "name": nullable("string"), "ip_address": nullable("string"),
        "os_description": nullable("string"), "os_version": nullable("string"), "os_locale": nullable("string"),
        "processor_architecture": nullable("string"), "manufacturer": nullable("string"), "model": nullable("string"),
        "bios_version": nullable("string"), "client_version": nullable("string"),
        "requested_target_group_names": { "type": "array", "items": string() },
        "group_ids": { "type": "array", "items": uuid() },
        "downstream_server_id": nullable_format("string", "uuid"),
        "downstream_server_name": { "type": ["string", "null"], "description": "The downstream server the computer was rolled up from; null = this server." },
        "registered_at": nullable_format("string", "date-time"), "last_contact_at": nullable_format("string", "date-time"),
        "last_sync_time": nullable_format("string", "date-time"), "last_reported_status_time": nullable_format("string", "date-time"),
        "last_scan_at": nullable_format("string", "date-time"),
        "state": schema_ref("ComputerState"),
        "counts": schema_ref("StatusCounts")
    });
    let computer_required: Vec<String> = computer.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let computer_required: Vec<&str> = computer_required.iter().map(String::as_str).collect();
    let mut summary = json!({ "update_id": uuid(), "title": nullable("string"), "kb_article_id": nullable("string") });
    for (k, v) in counts.as_object().into_iter().flatten() {
        summary[k] = v.clone();
    }
    let mut summary_required = vec!["update_id", "title", "kb_article_id"];
    summary_required.extend(count_names);
    let update = json!({
        "update_id": uuid(), "revision_number": { "type": "integer" }, "title": nullable("string"),
        "kb_article_id": nullable("string"), "update_type": { "enum": ["Software", "Driver"] },
        "publication_state": string(), "creation_date": nullable_format("string", "date-time"),
        "eula_id": nullable_format("string", "uuid"), "eula_accepted": { "type": "boolean" }, "declined": { "type": "boolean" },
        "approved_group_ids": { "type": "array", "items": uuid() },
        "category_ids": { "type": "array", "items": uuid(), "description": "Products and classifications." },
        "superseded_by": { "type": "array", "items": uuid() }
    });
    let update_keys: Vec<String> = update.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let update_keys: Vec<&str> = update_keys.iter().map(String::as_str).collect();
    let mut detail = update.clone();
    detail["approvals"] = json!({ "type": "array", "items": schema_ref("Approval") });
    detail["status_counts"] = schema_ref("StatusCounts");
    let mut detail_keys = update_keys.clone();
    detail_keys.extend(["approvals", "status_counts"]);
    let run = json!({
        "sync_id": { "type": "integer" }, "upstream_url": string(), "trigger": { "enum": ["manual", "schedule"] },
        "started_at": nullable_format("string", "date-time"), "finished_at": nullable_format("string", "date-time"),
        "result": { "enum": ["running", "succeeded", "failed", "cancelled"] }, "phase": nullable("string"),
        "done": { "type": "integer" }, "total": { "type": "integer" }, "error": nullable("string"),
        "revisions_new": { "type": "integer" }, "revisions_updated": { "type": "integer" },
        "deployments_changed": { "type": "integer" }, "files_queued": { "type": "integer" }, "bytes_received": { "type": "integer" },
        "revisions_quarantined": { "type": "integer", "description": "Documents the upstream sent that could not be read: set aside and asked for again by every later sync." }
    });
    let run_keys: Vec<String> = run.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let run_keys: Vec<&str> = run_keys.iter().map(String::as_str).collect();
    let rule_body = json!({
        "name": string(), "enabled": { "type": "boolean", "default": true },
        "classification_ids": { "type": "array", "items": uuid(), "description": "Any of these (empty = all)." },
        "product_ids": { "type": "array", "items": uuid(), "description": "And any of these (empty = all)." },
        "group_ids": { "type": "array", "items": uuid(), "minItems": 1 },
        "action": { "enum": ["Install", "OptionalInstall"], "default": "Install" },
        "deadline_offset_hours": { "type": ["integer", "null"], "minimum": 0, "maximum": 8760 }
    });
    let mut rule = rule_body.clone();
    rule["rule_id"] = uuid();
    let retention = object(
        &["event_days", "sync_history_days", "stale_computer_days"],
        json!({
            "event_days": { "type": "integer", "minimum": 1, "description": "Raw client events." },
            "sync_history_days": { "type": "integer", "minimum": 1 },
            "stale_computer_days": { "type": "integer", "minimum": 0, "description": "Remove computers silent this long; 0 = never." }
        }),
    );
    let settings = json!({
        "products": { "type": "array", "items": uuid(), "description": "Products to synchronise (empty = all)." },
        "classifications": { "type": "array", "items": uuid(), "description": "Classifications to synchronise (empty = all)." },
        "languages": { "type": "array", "items": string(), "description": "Enabled languages, e.g. en, de, or all." },
        "sync_schedule": object(&["syncs_per_day"], json!({ "syncs_per_day": { "type": "integer", "minimum": 0, "maximum": 24 } })),
        "content_mode": { "enum": ["lazy", "immediate", "catalog-only"] },
        "targeting": { "enum": ["server", "client"], "description": "server: groups are set through this API; client: a computer's group is the one it names (Group Policy)." },
        "retention": retention
    });
    let settings_keys: Vec<String> = settings.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let settings_keys: Vec<&str> = settings_keys.iter().map(String::as_str).collect();
    json!({
        "Error": object(&["error"], json!({ "error": string() })),
        "ComputerState": { "enum": ["up_to_date", "needs_updates", "with_errors", "not_reported"] },
        "UpdateState": { "enum": ["Unknown", "NotApplicable", "Needed", "Downloaded", "Installed", "Failed", "InstalledPendingReboot"] },
        "StatusCounts": object(&count_names, counts),
        "Computer": object(&computer_required, computer),
        "UpdateStatus": object(&["update_id", "title", "kb_article_id", "status", "last_change_time"], json!({
            "update_id": uuid(), "title": nullable("string"), "kb_article_id": nullable("string"),
            "status": schema_ref("UpdateState"), "last_change_time": { "type": "string", "format": "date-time" }
        })),
        "Group": object(&["group_id", "name", "parent_group_id", "is_builtin"], json!({
            "group_id": uuid(), "name": string(), "parent_group_id": nullable_format("string", "uuid"), "is_builtin": { "type": "boolean" }
        })),
        "NewGroup": object(&["name"], json!({ "name": { "type": "string", "minLength": 1, "maxLength": 256 },
            "parent_group_id": { "type": ["string", "null"], "format": "uuid", "description": "Default: All Computers." } })),
        "GroupChange": object(&[], json!({ "name": string(), "parent_group_id": uuid() })),
        "Members": object(&["computer_ids"], json!({ "computer_ids": { "type": "array", "items": string(), "minItems": 1, "maxItems": 1000 } })),
        "Update": object(&update_keys, update),
        "UpdateDetail": object(&detail_keys, detail),
        "Eula": object(&["eula_id", "accepted", "text"], json!({ "eula_id": uuid(), "accepted": { "type": "boolean" }, "text": string() })),
        "Approval": object(&["deployment_id", "update_id", "revision_number", "group_id", "action", "deadline", "is_assigned",
                             "download_priority", "admin_name", "last_change_time"], json!({
            "deployment_id": uuid(), "update_id": uuid(), "revision_number": nullable("integer"), "group_id": uuid(),
            "action": { "enum": ["Install", "OptionalInstall", "Uninstall", "PreDeploymentCheck", "Block"] },
            "deadline": nullable_format("string", "date-time"), "is_assigned": { "type": "boolean" },
            "download_priority": { "type": "integer" }, "admin_name": nullable("string"),
            "last_change_time": { "type": "string", "format": "date-time" }
        })),
        "ApprovalRequest": object(&[], json!({
            "action": { "enum": ["Install", "Uninstall"], "default": "Install" },
            "deadline": nullable_format("string", "date-time"),
            "accept_eula": { "type": "boolean", "default": false, "description": "Accept the update's license terms with this approval." }
        })),
        "RuleBody": object(&["name", "group_ids"], rule_body),
        "Rule": object(&["rule_id", "name", "enabled", "classification_ids", "product_ids", "group_ids", "action", "deadline_offset_hours"], rule),
        "ApplyRequest": object(&[], json!({ "rule_id": uuid(), "everything": { "type": "boolean", "default": false } })),
        "Applied": object(&["approved", "revisions_followed", "expired_declined"], json!({
            "approved": { "type": "integer" }, "revisions_followed": { "type": "integer" }, "expired_declined": { "type": "integer" }
        })),
        "Settings": object(&settings_keys, settings.clone()),
        "SettingsChange": object(&[], settings),
        "Category": object(&["category_id", "category_type", "title"], json!({
            "category_id": uuid(), "category_type": nullable("string"), "title": nullable("string")
        })),
        "SyncRun": object(&run_keys, run),
        "SyncStatus": object(&["upstream_url", "replica", "running", "last"], json!({
            "upstream_url": nullable("string"), "replica": { "type": "boolean" },
            "running": { "oneOf": [schema_ref("SyncRun"), { "type": "null" }] },
            "last": { "oneOf": [schema_ref("SyncRun"), { "type": "null" }] }
        })),
        "UpdateSummary": object(&summary_required, summary),
        "CleanupRun": object(&["run_id", "trigger", "started_at", "finished_at", "result", "job", "counts", "error"], json!({
            "run_id": { "type": "integer" }, "trigger": { "enum": ["schedule", "manual", "cli"] },
            "started_at": { "type": "string", "format": "date-time" }, "finished_at": nullable_format("string", "date-time"),
            "result": { "enum": ["running", "succeeded", "failed"] }, "job": nullable("string"),
            "counts": { "type": "object", "additionalProperties": { "type": "integer" },
                        "description": "By job: expired_declined, superseded_declined, obsolete_revisions_deleted, content_files_deleted, computers_removed, downstream_servers_removed, history_purged, events_purged." },
            "error": nullable("string")
        })),
        "DownstreamServer": object(&["server_id", "name", "parent_server_id", "version", "is_replica", "last_sync_time",
                                     "last_rollup_time", "computer_count", "computer_target_count",
                                     "computer_targets_needing_updates_count", "computer_targets_with_update_errors_count",
                                     "computers_up_to_date_count"], json!({
            "server_id": uuid(), "name": string(), "parent_server_id": nullable_format("string", "uuid"),
            "version": nullable("string"), "is_replica": { "type": "boolean" },
            "last_sync_time": nullable_format("string", "date-time"), "last_rollup_time": nullable_format("string", "date-time"),
            "computer_count": { "type": "integer" }, "computer_target_count": nullable("integer"),
            "computer_targets_needing_updates_count": nullable("integer"),
            "computer_targets_with_update_errors_count": nullable("integer"), "computers_up_to_date_count": nullable("integer")
        })),
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let (path, method, o) = operation(op);
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method.to_lowercase()] = o;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "WSUS management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Computers, target groups, updates, approvals, automatic approval rules, settings, synchronisation and reports. Every request needs `Authorization: Bearer <token>` with a token of WSUS_API_TOKENS; the reader role may only read. Lists are keyset pages (limit, cursor → next_cursor)."
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas()
        }
    })
}
