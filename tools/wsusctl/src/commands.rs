//! What each command asks the management API, and how its answer is printed.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{self, Cli, Command, ComputerFilter, PageArgs};

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    pub fn new(url: &str, token: Option<String>, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let token = token.context("no token: pass --token or set WSUS_API_TOKEN")?;
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-file {}: not PEM certificates", path.display()))?;
            if certs.is_empty() {
                bail!("--ca-file {}: holds no PEM certificate", path.display());
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build()?;
        Ok(Self { http, base: url.trim_end_matches('/').to_owned(), token })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut url =
            reqwest::Url::parse(&format!("{}{path}", self.base)).with_context(|| format!("URL {}", self.base))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut r = self.http.request(method.clone(), url.clone()).bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let response = r.send().await.with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let message =
                value.get("error").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| value.to_string());
            bail!("{method} {path}: {status}: {message}");
        }
        Ok(value)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.request(Method::GET, path, query, None).await
    }

    /// One page, or every page with `--all`.
    async fn items(&self, path: &str, query: &[(&str, String)], page: &PageArgs) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", page.limit.to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let p = self.get(path, &q).await?;
            items.extend(p["items"].as_array().cloned().unwrap_or_default());
            cursor = p["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return Ok(items);
            }
            if !page.all {
                // On standard error, so a --json reader still gets the page alone.
                eprintln!("(the first {}; more follow: --all for every page, --limit for bigger ones)", items.len());
                return Ok(items);
            }
        }
    }

    async fn groups(&self) -> anyhow::Result<Vec<Value>> {
        self.items("/api/v1/groups", &[], &PageArgs { all: true, limit: 1000 }).await
    }

    /// A group id from an id or a name (any letter case).
    async fn group_id(&self, group: &str) -> anyhow::Result<String> {
        if is_guid(group) {
            return Ok(group.to_lowercase());
        }
        self.groups()
            .await?
            .iter()
            .find(|g| g["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(group)))
            .and_then(|g| g["group_id"].as_str().map(str::to_owned))
            .with_context(|| format!("no target group named {group:?}"))
    }

    /// An update id from an id or a KB number.
    async fn update_id(&self, update: &str) -> anyhow::Result<String> {
        if is_guid(update) {
            return Ok(update.to_lowercase());
        }
        let found = self.get("/api/v1/updates", &[("kb", update.to_owned())]).await?;
        let items = found["items"].as_array().cloned().unwrap_or_default();
        match items.as_slice() {
            [one] => Ok(one["update_id"].as_str().unwrap_or_default().to_owned()),
            [] => bail!("no update with KB {update}"),
            _ => bail!("{} updates have KB {update}: give the update id", items.len()),
        }
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Prints rows under headers, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// A JSON value as a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn cells(v: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| match k.split_once('.') {
            Some((a, b)) => cell(&v[a][b]),
            None => cell(&v[*k]),
        })
        .collect()
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints a value as JSON or as `key: value` lines.
fn print_object(v: &Value, json_out: bool) {
    if json_out {
        return print_json(v);
    }
    if let Some(o) = v.as_object() {
        let width = o.keys().map(String::len).max().unwrap_or(0);
        for (k, val) in o {
            let shown = if val.is_object() { val.to_string() } else { cell(val) };
            println!("{k:<width$}  {shown}");
        }
    } else {
        println!("{}", cell(v));
    }
}

fn list(items: Vec<Value>, json_out: bool, headers: &[&str], keys: &[&str]) {
    if json_out {
        return print_json(&Value::Array(items));
    }
    let rows: Vec<Vec<String>> = items.iter().map(|i| cells(i, keys)).collect();
    table(headers, &rows);
}

const COMPUTER_HEADERS: [&str; 9] =
    ["ID", "NAME", "STATE", "OS", "INSTALLED", "NEEDED", "FAILED", "LAST CONTACT", "DOWNSTREAM SERVER"];
const COMPUTER_KEYS: [&str; 9] = [
    "computer_id",
    "name",
    "state",
    "os_version",
    "counts.installed",
    "counts.needed",
    "counts.failed",
    "last_contact_at",
    "downstream_server_name",
];

async fn computer_query(api: &ApiClient, f: &ComputerFilter) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut q = Vec::new();
    if let Some(g) = &f.group {
        q.push(("group_id", api.group_id(g).await?));
    }
    if let Some(s) = &f.state {
        q.push(("state", s.clone()));
    }
    if let Some(s) = &f.search {
        q.push(("search", s.clone()));
    }
    if let Some(s) = &f.downstream_server {
        q.push(("downstream_server_id", s.clone()));
    }
    Ok(q)
}

fn ids(list: &Option<String>) -> Option<Value> {
    list.as_ref().map(|l| json!(l.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>()))
}

/// Runs one command; Ok(false) when it ran but the outcome is a failure (exit 1).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let api = ApiClient::new(&cli.url, cli.token, cli.ca_file.as_deref())?;
    let j = cli.json;
    match cli.command {
        Command::Computers(c) => match c {
            cli::Computers::List(f) => {
                let q = computer_query(&api, &f).await?;
                list(api.items("/api/v1/computers", &q, &f.page).await?, j, &COMPUTER_HEADERS, &COMPUTER_KEYS);
            }
            cli::Computers::Show { computer } => {
                print_object(&api.get(&format!("/api/v1/computers/{computer}"), &[]).await?, j)
            }
            cli::Computers::Updates { computer, status, page } => {
                let q: Vec<(&str, String)> = status.map(|s| ("status", s)).into_iter().collect();
                let items = api.items(&format!("/api/v1/computers/{computer}/updates"), &q, &page).await?;
                list(
                    items,
                    j,
                    &["UPDATE", "KB", "STATUS", "SINCE", "TITLE"],
                    &["update_id", "kb_article_id", "status", "last_change_time", "title"],
                );
            }
            cli::Computers::Delete { computer } => {
                api.request(Method::DELETE, &format!("/api/v1/computers/{computer}"), &[], None).await?;
                println!("deleted {computer}");
            }
        },
        Command::Groups(g) => groups(&api, g, j).await?,
        Command::Updates(u) => updates(&api, u, j).await?,
        Command::Eula(e) => match e {
            cli::Eula::Show { update, language } => {
                let id = api.update_id(&update).await?;
                let q: Vec<(&str, String)> = language.map(|l| ("language", l)).into_iter().collect();
                let eula = api.get(&format!("/api/v1/updates/{id}/eula"), &q).await?;
                if j {
                    print_json(&eula);
                } else {
                    println!(
                        "EULA {} (accepted: {})\n\n{}",
                        cell(&eula["eula_id"]),
                        eula["accepted"],
                        cell(&eula["text"])
                    );
                }
            }
            cli::Eula::Accept { update } => {
                let id = api.update_id(&update).await?;
                let eula = api.request(Method::POST, &format!("/api/v1/updates/{id}/eula/accept"), &[], None).await?;
                if j { print_json(&eula) } else { println!("accepted EULA {}", cell(&eula["eula_id"])) }
            }
        },
        Command::Rules(r) => rules(&api, r, j).await?,
        Command::Settings(s) => match s {
            cli::Settings::Show => print_object(&api.get("/api/v1/settings", &[]).await?, j),
            cli::Settings::Set {
                products,
                classifications,
                languages,
                syncs_per_day,
                content_mode,
                targeting,
                event_days,
                sync_history_days,
                stale_computer_days,
            } => {
                let mut change = serde_json::Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        change.insert(k.into(), v);
                    }
                };
                put("products", ids(&products));
                put("classifications", ids(&classifications));
                put("languages", ids(&languages));
                put("sync_schedule", syncs_per_day.map(|n| json!({ "syncs_per_day": n })));
                put("content_mode", content_mode.map(Value::String));
                put("targeting", targeting.map(Value::String));
                if event_days.is_some() || sync_history_days.is_some() || stale_computer_days.is_some() {
                    let current = api.get("/api/v1/settings", &[]).await?["retention"].clone();
                    let mut retention = current;
                    for (k, v) in [
                        ("event_days", event_days),
                        ("sync_history_days", sync_history_days),
                        ("stale_computer_days", stale_computer_days),
                    ] {
                        if let Some(v) = v {
                            retention[k] = json!(v);
                        }
                    }
                    put("retention", Some(retention));
                }
                let changed = api.request(Method::PATCH, "/api/v1/settings", &[], Some(Value::Object(change))).await?;
                print_object(&changed, j);
            }
        },
        Command::Sync(s) => return sync(&api, s, j).await,
        Command::Cleanup(c) => return cleanup(&api, c, j).await,
        Command::Reports(r) => match r {
            cli::Reports::Updates { group, page } => {
                let mut q = Vec::new();
                if let Some(g) = group {
                    q.push(("group_id", api.group_id(&g).await?));
                }
                let items = api.items("/api/v1/reports/updates", &q, &page).await?;
                list(
                    items,
                    j,
                    &[
                        "UPDATE",
                        "KB",
                        "INSTALLED",
                        "NEEDED",
                        "DOWNLOADED",
                        "FAILED",
                        "REBOOT",
                        "N/A",
                        "UNKNOWN",
                        "TITLE",
                    ],
                    &[
                        "update_id",
                        "kb_article_id",
                        "installed",
                        "needed",
                        "downloaded",
                        "failed",
                        "installed_pending_reboot",
                        "not_applicable",
                        "unknown",
                        "title",
                    ],
                );
            }
            cli::Reports::Computers(f) => {
                let q = computer_query(&api, &f).await?;
                list(api.items("/api/v1/reports/computers", &q, &f.page).await?, j, &COMPUTER_HEADERS, &COMPUTER_KEYS);
            }
        },
        Command::DownstreamServers(page) => {
            let items = api.items("/api/v1/downstream-servers", &[], &page).await?;
            list(
                items,
                j,
                &["ID", "NAME", "VERSION", "COMPUTERS", "LAST SYNC", "LAST ROLLUP"],
                &["server_id", "name", "version", "computer_count", "last_sync_time", "last_rollup_time"],
            );
        }
    }
    Ok(true)
}

async fn groups(api: &ApiClient, g: cli::Groups, j: bool) -> anyhow::Result<()> {
    match g {
        cli::Groups::List => {
            let all = api.groups().await?;
            if j {
                print_json(&Value::Array(all));
                return Ok(());
            }
            // Depth-first from the roots, children by name.
            fn walk(all: &[Value], parent: Option<&str>, depth: usize, rows: &mut Vec<Vec<String>>) {
                for g in all.iter().filter(|g| g["parent_group_id"].as_str() == parent) {
                    let name = format!("{}{}", "  ".repeat(depth), cell(&g["name"]));
                    rows.push(vec![name, cell(&g["group_id"])]);
                    walk(all, g["group_id"].as_str(), depth + 1, rows);
                }
            }
            let mut rows = Vec::new();
            walk(&all, None, 0, &mut rows);
            table(&["GROUP", "ID"], &rows);
        }
        cli::Groups::Create { name, parent } => {
            let parent = match parent {
                Some(p) => Some(api.group_id(&p).await?),
                None => None,
            };
            let body = json!({ "name": name, "parent_group_id": parent });
            let g = api.request(Method::POST, "/api/v1/groups", &[], Some(body)).await?;
            if j { print_json(&g) } else { println!("created group {} ({})", cell(&g["name"]), cell(&g["group_id"])) }
        }
        cli::Groups::Rename { group, name } => {
            let id = api.group_id(&group).await?;
            let g =
                api.request(Method::PATCH, &format!("/api/v1/groups/{id}"), &[], Some(json!({ "name": name }))).await?;
            print_object(&g, j);
        }
        cli::Groups::Move { group, parent } => {
            let id = api.group_id(&group).await?;
            let parent = api.group_id(&parent).await?;
            let body = json!({ "parent_group_id": parent });
            print_object(&api.request(Method::PATCH, &format!("/api/v1/groups/{id}"), &[], Some(body)).await?, j);
        }
        cli::Groups::Delete { group } => {
            let id = api.group_id(&group).await?;
            api.request(Method::DELETE, &format!("/api/v1/groups/{id}"), &[], None).await?;
            println!("deleted group {group}");
        }
        cli::Groups::Add { group, computers } => {
            let id = api.group_id(&group).await?;
            let body = json!({ "computer_ids": computers });
            let r = api.request(Method::POST, &format!("/api/v1/groups/{id}/computers"), &[], Some(body)).await?;
            if j { print_json(&r) } else { println!("added {} computer(s) to {group}", cell(&r["added"])) }
        }
        cli::Groups::Remove { group, computer } => {
            let id = api.group_id(&group).await?;
            api.request(Method::DELETE, &format!("/api/v1/groups/{id}/computers/{computer}"), &[], None).await?;
            println!("removed {computer} from {group}");
        }
        cli::Groups::Members { group, page } => {
            let id = api.group_id(&group).await?;
            let items = api.items(&format!("/api/v1/groups/{id}/computers"), &[], &page).await?;
            list(items, j, &COMPUTER_HEADERS, &COMPUTER_KEYS);
        }
    }
    Ok(())
}

async fn updates(api: &ApiClient, u: cli::Updates, j: bool) -> anyhow::Result<()> {
    match u {
        cli::Updates::List { search, kb, classification, product, approval, page } => {
            let q: Vec<(&str, String)> = [
                ("search", search),
                ("kb", kb),
                ("classification", classification),
                ("product", product),
                ("approval", approval),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let mut items = api.items("/api/v1/updates", &q, &page).await?;
            if !j {
                // A table names the groups; the JSON keeps their ids.
                let groups = api.groups().await?;
                let name = |id: &Value| {
                    groups.iter().find(|g| g["group_id"] == *id).map_or_else(|| id.clone(), |g| g["name"].clone())
                };
                for u in &mut items {
                    if let Some(ids) = u["approved_group_ids"].as_array() {
                        u["approved_group_ids"] = Value::Array(ids.iter().map(name).collect());
                    }
                }
            }
            list(
                items,
                j,
                &["UPDATE", "REV", "KB", "DECLINED", "APPROVED FOR", "TITLE"],
                &["update_id", "revision_number", "kb_article_id", "declined", "approved_group_ids", "title"],
            );
        }
        cli::Updates::Show { update, group } => {
            let id = api.update_id(&update).await?;
            let mut q = Vec::new();
            if let Some(g) = group {
                q.push(("group_id", api.group_id(&g).await?));
            }
            print_object(&api.get(&format!("/api/v1/updates/{id}"), &q).await?, j);
        }
        cli::Updates::Approve { update, group, action, deadline, accept_eula } => {
            let id = api.update_id(&update).await?;
            let gid = api.group_id(&group).await?;
            let body = json!({ "action": action, "deadline": deadline, "accept_eula": accept_eula });
            let a = api.request(Method::PUT, &format!("/api/v1/updates/{id}/approvals/{gid}"), &[], Some(body)).await?;
            if j {
                print_json(&a);
            } else {
                println!("approved {update} for {group}: {} (deadline {})", cell(&a["action"]), cell(&a["deadline"]));
            }
        }
        cli::Updates::Unapprove { update, group } => {
            let id = api.update_id(&update).await?;
            let gid = api.group_id(&group).await?;
            api.request(Method::DELETE, &format!("/api/v1/updates/{id}/approvals/{gid}"), &[], None).await?;
            println!("{group} inherits its parent's approval of {update} again");
        }
        cli::Updates::Decline { update } => {
            let id = api.update_id(&update).await?;
            api.request(Method::POST, &format!("/api/v1/updates/{id}/decline"), &[], None).await?;
            println!("declined {update}");
        }
        cli::Updates::Undecline { update } => {
            let id = api.update_id(&update).await?;
            api.request(Method::DELETE, &format!("/api/v1/updates/{id}/decline"), &[], None).await?;
            println!("{update} is no longer declined");
        }
    }
    Ok(())
}

async fn rules(api: &ApiClient, r: cli::Rules, j: bool) -> anyhow::Result<()> {
    match r {
        cli::Rules::List => {
            let items = api.items("/api/v1/rules", &[], &PageArgs { all: true, limit: 1000 }).await?;
            list(
                items,
                j,
                &["ID", "NAME", "ENABLED", "CLASSIFICATIONS", "PRODUCTS", "GROUPS", "DEADLINE H"],
                &[
                    "rule_id",
                    "name",
                    "enabled",
                    "classification_ids",
                    "product_ids",
                    "group_ids",
                    "deadline_offset_hours",
                ],
            );
        }
        cli::Rules::Create { name, classifications, products, groups, deadline_hours, disabled } => {
            let mut group_ids = Vec::new();
            for g in &groups {
                group_ids.push(api.group_id(g).await?);
            }
            let body = json!({
                "name": name, "enabled": !disabled, "classification_ids": classifications, "product_ids": products,
                "group_ids": group_ids, "deadline_offset_hours": deadline_hours
            });
            let rule = api.request(Method::POST, "/api/v1/rules", &[], Some(body)).await?;
            if j {
                print_json(&rule)
            } else {
                println!("created rule {} ({})", cell(&rule["name"]), cell(&rule["rule_id"]))
            }
        }
        cli::Rules::Delete { rule } => {
            api.request(Method::DELETE, &format!("/api/v1/rules/{rule}"), &[], None).await?;
            println!("deleted rule {rule}");
        }
        cli::Rules::Apply { rule, everything } => {
            let body = json!({ "rule_id": rule, "everything": everything });
            print_object(&api.request(Method::POST, "/api/v1/rules/apply", &[], Some(body)).await?, j);
        }
    }
    Ok(())
}

async fn sync(api: &ApiClient, s: cli::Sync, j: bool) -> anyhow::Result<bool> {
    match s {
        cli::Sync::Status => print_object(&api.get("/api/v1/sync/status", &[]).await?, j),
        cli::Sync::History(page) => {
            let items = api.items("/api/v1/sync/history", &[], &page).await?;
            list(
                items,
                j,
                &["ID", "TRIGGER", "STARTED", "FINISHED", "RESULT", "NEW", "UPDATED", "ERROR"],
                &[
                    "sync_id",
                    "trigger",
                    "started_at",
                    "finished_at",
                    "result",
                    "revisions_new",
                    "revisions_updated",
                    "error",
                ],
            );
        }
        cli::Sync::Start { wait } => {
            let started = api.request(Method::POST, "/api/v1/sync/start", &[], None).await?;
            let id = started["sync_id"].as_i64().unwrap_or_default();
            if !wait {
                if j {
                    print_json(&started)
                } else {
                    println!("started sync {id}")
                }
                return Ok(true);
            }
            let run = wait_for(api, id, j).await?;
            if j {
                print_json(&run);
            } else {
                println!(
                    "sync {id} {}: {} new, {} updated revisions{}",
                    cell(&run["result"]),
                    cell(&run["revisions_new"]),
                    cell(&run["revisions_updated"]),
                    run["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default()
                );
            }
            return Ok(run["result"] == "succeeded");
        }
    }
    Ok(true)
}

/// Polls until sync `id` is finished, drawing a progress bar on a terminal (one line per
/// phase otherwise). Returns the finished run.
async fn wait_for(api: &ApiClient, id: i64, quiet: bool) -> anyhow::Result<Value> {
    let tty = std::io::stderr().is_terminal();
    let mut last_phase = String::new();
    loop {
        let status = api.get("/api/v1/sync/status", &[]).await?;
        if status["last"]["sync_id"].as_i64() == Some(id) && status["running"]["sync_id"].as_i64() != Some(id) {
            if tty && !quiet {
                eprintln!();
            }
            return Ok(status["last"].clone());
        }
        let running = &status["running"];
        if running["sync_id"].as_i64() == Some(id) && !quiet {
            let phase = cell(&running["phase"]);
            let (done, total) = (running["done"].as_i64().unwrap_or(0), running["total"].as_i64().unwrap_or(0));
            if tty {
                let width = 30usize;
                let filled = if total > 0 { (done.min(total) as usize * width) / total as usize } else { 0 };
                eprint!("\r[{}{}] {phase:<14} {done}/{total}   ", "#".repeat(filled), ".".repeat(width - filled));
                let _ = std::io::stderr().flush();
            } else if phase != last_phase {
                eprintln!("sync {id}: {phase}");
            }
            last_phase = phase;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn cleanup(api: &ApiClient, c: cli::Cleanup, j: bool) -> anyhow::Result<bool> {
    match c {
        cli::Cleanup::Runs(page) => {
            let items = api.items("/api/v1/cleanup/runs", &[], &page).await?;
            list(
                items,
                j,
                &["ID", "TRIGGER", "STARTED", "FINISHED", "RESULT", "COUNTS", "ERROR"],
                &["run_id", "trigger", "started_at", "finished_at", "result", "counts", "error"],
            );
            Ok(true)
        }
        cli::Cleanup::Start { wait } => {
            let started = api.request(Method::POST, "/api/v1/cleanup/start", &[], None).await?;
            let id = started["run_id"].as_i64().unwrap_or_default();
            if !wait {
                if j {
                    print_json(&started)
                } else {
                    println!("started cleanup {id}")
                }
                return Ok(true);
            }
            loop {
                let runs = api.get("/api/v1/cleanup/runs", &[("limit", "20".to_owned())]).await?;
                let run =
                    runs["items"].as_array().and_then(|r| r.iter().find(|r| r["run_id"].as_i64() == Some(id)).cloned());
                if let Some(run) = run.filter(|r| r["result"] != "running") {
                    if j {
                        print_json(&run);
                    } else {
                        let counts: Vec<String> = run["counts"]
                            .as_object()
                            .map(|o| o.iter().map(|(k, v)| format!("{k} {v}")).collect())
                            .unwrap_or_default();
                        println!("cleanup {id} {}: {}", cell(&run["result"]), counts.join(", "));
                    }
                    return Ok(run["result"] == "succeeded");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
