//! What each command asks the management API, and how its answer is printed.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;
use wsus_api::{
    Added, Applied, ApplyRequest, Approval, ApprovalRequest, ChannelKind, CleanupRun, CleanupStarted, Computer,
    DownstreamServer, Eula, GenerateCertificate, Group, GroupChange, Members, NewGroup, NewNotificationChannel,
    Notification, NotificationChannel, NotificationSettings, NotificationSettingsChange, Page, Published,
    PublishedDeleted, PublishedPackage, RetentionChange, RuleBody, RunResult, Schedule, Settings, SettingsChange,
    SigningCertificate, SummaryScheduleChange, SyncRun, SyncStarted, SyncStatus, TestQueued, Update, UpdateDetail,
    UpdateStatus, UpdateSummary,
};

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

    /// One call; the answer read as the API's contract says it is (`()` for none).
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<T> {
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
        answer(&method, path, response).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<T> {
        self.request(Method::GET, path, query, None::<&()>).await
    }

    /// A call that answers nothing.
    async fn send(&self, method: Method, path: &str, body: Option<&(impl Serialize + ?Sized)>) -> anyhow::Result<()> {
        self.request::<()>(method, path, &[], body).await
    }

    /// One page, or every page with `--all`.
    async fn items<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        page: &PageArgs,
    ) -> anyhow::Result<Vec<T>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", page.limit.to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let p: Page<T> = self.get(path, &q).await?;
            items.extend(p.items);
            cursor = p.next_cursor;
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

    /// Uploads a package definition and its installer (streamed from disk).
    async fn publish(&self, definition: &Path, installer: Option<&Path>) -> anyhow::Result<Published> {
        use reqwest::multipart::{Form, Part};
        let text = std::fs::read_to_string(definition).with_context(|| format!("{}", definition.display()))?;
        let mut form = Form::new().part("definition", Part::text(text).mime_str("application/xml")?);
        if let Some(path) = installer {
            let file = tokio::fs::File::open(path).await.with_context(|| format!("{}", path.display()))?;
            let size = file.metadata().await?.len();
            let name = path.file_name().and_then(|n| n.to_str()).context("the installer's file name")?.to_owned();
            let part = Part::stream_with_length(reqwest::Body::from(file), size).file_name(name);
            form = form.part("installer", part.mime_str("application/octet-stream")?);
        }
        let url = format!("{}/api/v1/publishing/packages", self.base);
        // An installer's upload, Cabinet and signature take longer than a call's minute.
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .multipart(form)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        answer(&Method::POST, "/api/v1/publishing/packages", response).await
    }

    async fn groups(&self) -> anyhow::Result<Vec<Group>> {
        self.items("/api/v1/groups", &[], &PageArgs { all: true, limit: 1000 }).await
    }

    /// A group id from an id or a name (any letter case).
    async fn group_id(&self, group: &str) -> anyhow::Result<Uuid> {
        if let Ok(id) = Uuid::parse_str(group) {
            return Ok(id);
        }
        self.groups()
            .await?
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(group))
            .map(|g| g.group_id)
            .with_context(|| format!("no target group named {group:?}"))
    }

    /// An update id from an id or a KB number.
    async fn update_id(&self, update: &str) -> anyhow::Result<Uuid> {
        if let Ok(id) = Uuid::parse_str(update) {
            return Ok(id);
        }
        let found: Page<Update> = self.get("/api/v1/updates", &[("kb", update.to_owned())]).await?;
        let items = found.items;
        match items.as_slice() {
            [one] => Ok(one.update_id),
            [] => bail!("no update with KB {update}"),
            _ => bail!("{} updates have KB {update}: give the update id", items.len()),
        }
    }
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

/// An answer read as the API's contract says it is (`()` for none), or its error.
async fn answer<T: DeserializeOwned>(method: &Method, path: &str, response: reqwest::Response) -> anyhow::Result<T> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        let message = serde_json::from_str::<wsus_api::Error>(&text).map(|e| e.error).unwrap_or(text);
        bail!("{method} {path}: {status}: {message}");
    }
    let text = if text.is_empty() { "null" } else { text.as_str() };
    serde_json::from_str(text).with_context(|| format!("{method} {path}: the answer is not what the API describes"))
}

fn print_json(v: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A typed answer as JSON, for the tables' cells.
fn json_of(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Prints a value as JSON or as `key: value` lines.
fn print_object(v: &impl Serialize, json_out: bool) {
    if json_out {
        return print_json(v);
    }
    let v = &json_of(v);
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

fn list(items: Vec<impl Serialize>, json_out: bool, headers: &[&str], keys: &[&str]) {
    if json_out {
        return print_json(&items);
    }
    let rows: Vec<Vec<String>> = items.iter().map(|i| cells(&json_of(i), keys)).collect();
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
        q.push(("group_id", api.group_id(g).await?.to_string()));
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

/// A comma-separated list.
fn words(list: &Option<String>) -> Option<Vec<String>> {
    list.as_ref().map(|l| l.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

/// A comma-separated list of ids.
fn ids(list: &Option<String>) -> anyhow::Result<Option<Vec<Uuid>>> {
    words(list)
        .map(|w| w.iter().map(|id| Uuid::parse_str(id).with_context(|| format!("{id:?} is not an id"))).collect())
        .transpose()
}

/// A word the API knows (an action, a mode), as its contract spells it.
fn word<T: DeserializeOwned>(what: &str, value: &str) -> anyhow::Result<T> {
    serde_json::from_value(Value::String(value.to_owned()))
        .with_context(|| format!("{what} {value:?} is not one the API knows"))
}

/// Runs one command; Ok(false) when it ran but the outcome is a failure (exit 1).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let api = ApiClient::new(&cli.url, cli.token, cli.ca_file.as_deref())?;
    let j = cli.json;
    match cli.command {
        Command::Computers(c) => computers(&api, c, j).await?,
        Command::Groups(g) => groups(&api, g, j).await?,
        Command::Updates(u) => updates(&api, u, j).await?,
        Command::Eula(e) => eula(&api, e, j).await?,
        Command::Rules(r) => rules(&api, r, j).await?,
        Command::Settings(s) => settings(&api, s, j).await?,
        Command::Sync(s) => return sync(&api, s, j).await,
        Command::Cleanup(c) => return cleanup(&api, c, j).await,
        Command::Reports(r) => reports(&api, r, j).await?,
        Command::Publish { definition, installer } => {
            let published = api.publish(&definition, installer.as_deref()).await?;
            if j {
                print_json(&published);
            } else {
                let file =
                    published.file_sha1.as_deref().map_or("metadata only".to_owned(), |s| format!("Cabinet {s}"));
                println!(
                    "published {} revision {}: {} ({file})",
                    published.update_id, published.revision_number, published.title
                );
            }
        }
        Command::Publishing(p) => publishing(&api, p, j).await?,
        Command::Notifications(n) => notifications(&api, n, j).await?,
        Command::DownstreamServers(page) => {
            let items: Vec<DownstreamServer> = api.items("/api/v1/downstream-servers", &[], &page).await?;
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

async fn computers(api: &ApiClient, c: cli::Computers, j: bool) -> anyhow::Result<()> {
    match c {
        cli::Computers::List(f) => {
            let q = computer_query(api, &f).await?;
            let items: Vec<Computer> = api.items("/api/v1/computers", &q, &f.page).await?;
            list(items, j, &COMPUTER_HEADERS, &COMPUTER_KEYS);
        }
        cli::Computers::Show { computer } => {
            print_object(&api.get::<Computer>(&format!("/api/v1/computers/{computer}"), &[]).await?, j)
        }
        cli::Computers::Updates { computer, status, page } => {
            let q: Vec<(&str, String)> = status.map(|s| ("status", s)).into_iter().collect();
            let items: Vec<UpdateStatus> =
                api.items(&format!("/api/v1/computers/{computer}/updates"), &q, &page).await?;
            list(
                items,
                j,
                &["UPDATE", "KB", "STATUS", "SINCE", "TITLE"],
                &["update_id", "kb_article_id", "status", "last_change_time", "title"],
            );
        }
        cli::Computers::Delete { computer } => {
            api.send(Method::DELETE, &format!("/api/v1/computers/{computer}"), None::<&()>).await?;
            println!("deleted {computer}");
        }
    }
    Ok(())
}

async fn eula(api: &ApiClient, e: cli::Eula, j: bool) -> anyhow::Result<()> {
    match e {
        cli::Eula::Show { update, language } => {
            let id = api.update_id(&update).await?;
            let q: Vec<(&str, String)> = language.map(|l| ("language", l)).into_iter().collect();
            let eula: Eula = api.get(&format!("/api/v1/updates/{id}/eula"), &q).await?;
            if j {
                print_json(&eula);
            } else {
                println!("EULA {} (accepted: {})\n\n{}", eula.eula_id, eula.accepted, eula.text);
            }
        }
        cli::Eula::Accept { update } => {
            let id = api.update_id(&update).await?;
            let eula: Eula =
                api.request(Method::POST, &format!("/api/v1/updates/{id}/eula/accept"), &[], None::<&()>).await?;
            if j { print_json(&eula) } else { println!("accepted EULA {}", eula.eula_id) }
        }
    }
    Ok(())
}

async fn settings(api: &ApiClient, s: cli::Settings, j: bool) -> anyhow::Result<()> {
    match s {
        cli::Settings::Show => print_object(&api.get::<Settings>("/api/v1/settings", &[]).await?, j),
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
            let mut change = SettingsChange {
                products: ids(&products)?,
                classifications: ids(&classifications)?,
                languages: words(&languages),
                sync_schedule: syncs_per_day.map(|syncs_per_day| Schedule { syncs_per_day }),
                content_mode: content_mode.as_deref().map(|m| word("content mode", m)).transpose()?,
                targeting: targeting.as_deref().map(|t| word("targeting", t)).transpose()?,
                retention: None,
            };
            if event_days.is_some() || sync_history_days.is_some() || stale_computer_days.is_some() {
                change.retention = Some(RetentionChange { event_days, sync_history_days, stale_computer_days });
            }
            let changed: Settings = api.request(Method::PATCH, "/api/v1/settings", &[], Some(&change)).await?;
            print_object(&changed, j);
        }
    }
    Ok(())
}

async fn reports(api: &ApiClient, r: cli::Reports, j: bool) -> anyhow::Result<()> {
    match r {
        cli::Reports::Updates { group, page } => {
            let mut q = Vec::new();
            if let Some(g) = group {
                q.push(("group_id", api.group_id(&g).await?.to_string()));
            }
            let items: Vec<UpdateSummary> = api.items("/api/v1/reports/updates", &q, &page).await?;
            list(
                items,
                j,
                &["UPDATE", "KB", "INSTALLED", "NEEDED", "DOWNLOADED", "FAILED", "REBOOT", "N/A", "UNKNOWN", "TITLE"],
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
            let q = computer_query(api, &f).await?;
            let items: Vec<Computer> = api.items("/api/v1/reports/computers", &q, &f.page).await?;
            list(items, j, &COMPUTER_HEADERS, &COMPUTER_KEYS);
        }
    }
    Ok(())
}

async fn groups(api: &ApiClient, g: cli::Groups, j: bool) -> anyhow::Result<()> {
    match g {
        cli::Groups::List => {
            let all = api.groups().await?;
            if j {
                print_json(&all);
                return Ok(());
            }
            // Depth-first from the roots, children by name.
            fn walk(all: &[Group], parent: Option<Uuid>, depth: usize, rows: &mut Vec<Vec<String>>) {
                for g in all.iter().filter(|g| g.parent_group_id == parent) {
                    rows.push(vec![format!("{}{}", "  ".repeat(depth), g.name), g.group_id.to_string()]);
                    walk(all, Some(g.group_id), depth + 1, rows);
                }
            }
            let mut rows = Vec::new();
            walk(&all, None, 0, &mut rows);
            table(&["GROUP", "ID"], &rows);
        }
        cli::Groups::Create { name, parent } => {
            let parent_group_id = match parent {
                Some(p) => Some(api.group_id(&p).await?),
                None => None,
            };
            let body = NewGroup { name, parent_group_id };
            let g: Group = api.request(Method::POST, "/api/v1/groups", &[], Some(&body)).await?;
            if j { print_json(&g) } else { println!("created group {} ({})", g.name, g.group_id) }
        }
        cli::Groups::Rename { group, name } => {
            let id = api.group_id(&group).await?;
            let body = GroupChange { name: Some(name), ..Default::default() };
            let g: Group = api.request(Method::PATCH, &format!("/api/v1/groups/{id}"), &[], Some(&body)).await?;
            print_object(&g, j);
        }
        cli::Groups::Move { group, parent } => {
            let id = api.group_id(&group).await?;
            let body = GroupChange { parent_group_id: Some(api.group_id(&parent).await?), ..Default::default() };
            let g: Group = api.request(Method::PATCH, &format!("/api/v1/groups/{id}"), &[], Some(&body)).await?;
            print_object(&g, j);
        }
        cli::Groups::Delete { group } => {
            let id = api.group_id(&group).await?;
            api.send(Method::DELETE, &format!("/api/v1/groups/{id}"), None::<&()>).await?;
            println!("deleted group {group}");
        }
        cli::Groups::Add { group, computers } => {
            let id = api.group_id(&group).await?;
            let body = Members { computer_ids: computers };
            let r: Added =
                api.request(Method::POST, &format!("/api/v1/groups/{id}/computers"), &[], Some(&body)).await?;
            if j { print_json(&r) } else { println!("added {} computer(s) to {group}", r.added) }
        }
        cli::Groups::Remove { group, computer } => {
            let id = api.group_id(&group).await?;
            api.send(Method::DELETE, &format!("/api/v1/groups/{id}/computers/{computer}"), None::<&()>).await?;
            println!("removed {computer} from {group}");
        }
        cli::Groups::Members { group, page } => {
            let id = api.group_id(&group).await?;
            let items: Vec<Computer> = api.items(&format!("/api/v1/groups/{id}/computers"), &[], &page).await?;
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
            let items: Vec<Update> = api.items("/api/v1/updates", &q, &page).await?;
            let mut rows: Vec<Value> = items.iter().map(json_of).collect();
            if !j {
                // A table names the groups; the JSON keeps their ids.
                let groups = api.groups().await?;
                let name = |id: &Uuid| {
                    groups.iter().find(|g| g.group_id == *id).map_or_else(|| id.to_string(), |g| g.name.clone())
                };
                for (row, u) in rows.iter_mut().zip(&items) {
                    row["approved_group_ids"] = u.approved_group_ids.iter().map(name).collect::<Vec<_>>().into();
                }
            }
            list(
                rows,
                j,
                &["UPDATE", "REV", "KB", "DECLINED", "APPROVED FOR", "TITLE"],
                &["update_id", "revision_number", "kb_article_id", "declined", "approved_group_ids", "title"],
            );
        }
        cli::Updates::Show { update, group } => {
            let id = api.update_id(&update).await?;
            let mut q = Vec::new();
            if let Some(g) = group {
                q.push(("group_id", api.group_id(&g).await?.to_string()));
            }
            print_object(&api.get::<UpdateDetail>(&format!("/api/v1/updates/{id}"), &q).await?, j);
        }
        cli::Updates::Approve { update, group, action, deadline, accept_eula } => {
            let id = api.update_id(&update).await?;
            let gid = api.group_id(&group).await?;
            let deadline = deadline
                .map(|d| {
                    chrono::DateTime::parse_from_rfc3339(&d).with_context(|| format!("--deadline {d:?}: not RFC 3339"))
                })
                .transpose()?
                .map(|d| d.with_timezone(&chrono::Utc));
            let body = ApprovalRequest { action: Some(word("action", &action)?), deadline, accept_eula };
            let a: Approval =
                api.request(Method::PUT, &format!("/api/v1/updates/{id}/approvals/{gid}"), &[], Some(&body)).await?;
            if j {
                print_json(&a);
            } else {
                let deadline = a
                    .deadline
                    .map_or_else(|| "-".to_owned(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
                println!("approved {update} for {group}: {:?} (deadline {deadline})", a.action);
            }
        }
        cli::Updates::Unapprove { update, group } => {
            let id = api.update_id(&update).await?;
            let gid = api.group_id(&group).await?;
            api.send(Method::DELETE, &format!("/api/v1/updates/{id}/approvals/{gid}"), None::<&()>).await?;
            println!("{group} inherits its parent's approval of {update} again");
        }
        cli::Updates::Decline { update } => {
            let id = api.update_id(&update).await?;
            api.send(Method::POST, &format!("/api/v1/updates/{id}/decline"), None::<&()>).await?;
            println!("declined {update}");
        }
        cli::Updates::Undecline { update } => {
            let id = api.update_id(&update).await?;
            api.send(Method::DELETE, &format!("/api/v1/updates/{id}/decline"), None::<&()>).await?;
            println!("{update} is no longer declined");
        }
    }
    Ok(())
}

async fn rules(api: &ApiClient, r: cli::Rules, j: bool) -> anyhow::Result<()> {
    match r {
        cli::Rules::List => {
            let items: Vec<wsus_api::Rule> =
                api.items("/api/v1/rules", &[], &PageArgs { all: true, limit: 1000 }).await?;
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
            let body = RuleBody {
                name,
                enabled: !disabled,
                classification_ids: ids(&Some(classifications.join(",")))?.unwrap_or_default(),
                product_ids: ids(&Some(products.join(",")))?.unwrap_or_default(),
                group_ids,
                action: None,
                deadline_offset_hours: deadline_hours,
            };
            let rule: wsus_api::Rule = api.request(Method::POST, "/api/v1/rules", &[], Some(&body)).await?;
            if j { print_json(&rule) } else { println!("created rule {} ({})", rule.name, rule.rule_id) }
        }
        cli::Rules::Delete { rule } => {
            api.send(Method::DELETE, &format!("/api/v1/rules/{rule}"), None::<&()>).await?;
            println!("deleted rule {rule}");
        }
        cli::Rules::Apply { rule, everything } => {
            let rule_id = rule
                .as_deref()
                .map(|r| Uuid::parse_str(r).with_context(|| format!("{r:?} is not a rule id")))
                .transpose()?;
            let body = ApplyRequest { rule_id, everything };
            let applied: Applied = api.request(Method::POST, "/api/v1/rules/apply", &[], Some(&body)).await?;
            print_object(&applied, j);
        }
    }
    Ok(())
}

async fn sync(api: &ApiClient, s: cli::Sync, j: bool) -> anyhow::Result<bool> {
    match s {
        cli::Sync::Status => print_object(&api.get::<SyncStatus>("/api/v1/sync/status", &[]).await?, j),
        cli::Sync::History(page) => {
            let items: Vec<SyncRun> = api.items("/api/v1/sync/history", &[], &page).await?;
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
            let started: SyncStarted = api.request(Method::POST, "/api/v1/sync/start", &[], None::<&()>).await?;
            let id = started.sync_id;
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
                    run.result,
                    run.revisions_new,
                    run.revisions_updated,
                    run.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                );
            }
            return Ok(run.result == RunResult::Succeeded);
        }
    }
    Ok(true)
}

/// Polls until sync `id` is finished, drawing a progress bar on a terminal (one line per
/// phase otherwise). Returns the finished run.
async fn wait_for(api: &ApiClient, id: i64, quiet: bool) -> anyhow::Result<SyncRun> {
    let tty = std::io::stderr().is_terminal();
    let mut last_phase = String::new();
    loop {
        let status: SyncStatus = api.get("/api/v1/sync/status", &[]).await?;
        let running = status.running.filter(|r| r.sync_id == id);
        if let Some(last) = status.last.filter(|l| l.sync_id == id && running.is_none()) {
            if tty && !quiet {
                eprintln!();
            }
            return Ok(last);
        }
        if let Some(running) = running.filter(|_| !quiet) {
            let phase = running.phase.unwrap_or_else(|| "-".to_owned());
            let (done, total) = (running.done, running.total);
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
            let items: Vec<CleanupRun> = api.items("/api/v1/cleanup/runs", &[], &page).await?;
            list(
                items,
                j,
                &["ID", "TRIGGER", "STARTED", "FINISHED", "RESULT", "COUNTS", "ERROR"],
                &["run_id", "trigger", "started_at", "finished_at", "result", "counts", "error"],
            );
            Ok(true)
        }
        cli::Cleanup::Start { wait } => {
            let started: CleanupStarted = api.request(Method::POST, "/api/v1/cleanup/start", &[], None::<&()>).await?;
            let id = started.run_id;
            if !wait {
                if j {
                    print_json(&started)
                } else {
                    println!("started cleanup {id}")
                }
                return Ok(true);
            }
            loop {
                let runs: Page<CleanupRun> = api.get("/api/v1/cleanup/runs", &[("limit", "20".to_owned())]).await?;
                let run = runs.items.into_iter().find(|r| r.run_id == id);
                if let Some(run) = run.filter(|r| r.result != RunResult::Running) {
                    if j {
                        print_json(&run);
                    } else {
                        let counts: Vec<String> = run.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                        println!("cleanup {id} {}: {}", run.result, counts.join(", "));
                    }
                    return Ok(run.result == RunResult::Succeeded);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn publishing(api: &ApiClient, p: cli::Publishing, j: bool) -> anyhow::Result<()> {
    match p {
        cli::Publishing::List => {
            let items: Vec<PublishedPackage> = api.get("/api/v1/publishing/packages", &[]).await?;
            list(
                items,
                j,
                &["UPDATE", "REVISION", "VENDOR", "PRODUCT", "EXPIRED", "TITLE"],
                &["update_id", "revision_number", "vendor", "product", "expired", "title"],
            );
        }
        cli::Publishing::Expire { update_id } => {
            let path = format!("/api/v1/publishing/packages/{update_id}/expire");
            let expired: Published = api.request(Method::POST, &path, &[], None::<&()>).await?;
            if j {
                print_json(&expired);
            } else {
                println!("expired {update_id}: revision {}", expired.revision_number);
            }
        }
        cli::Publishing::Delete { update_id } => {
            let path = format!("/api/v1/publishing/packages/{update_id}");
            let deleted: PublishedDeleted = api.request(Method::DELETE, &path, &[], None::<&()>).await?;
            if j {
                print_json(&deleted);
            } else {
                println!("deleted {update_id} ({} revisions)", deleted.revisions_deleted);
            }
        }
        cli::Publishing::Certificate { pem } => {
            let c: SigningCertificate = api.get("/api/v1/publishing/certificate", &[]).await?;
            certificate(&c, pem, j)?;
        }
        cli::Publishing::GenerateCertificate { name, days } => {
            let request = GenerateCertificate { common_name: name, valid_days: days };
            let c: SigningCertificate =
                api.request(Method::POST, "/api/v1/publishing/certificate", &[], Some(&request)).await?;
            certificate(&c, false, j)?;
        }
    }
    Ok(())
}

fn certificate(c: &SigningCertificate, pem: bool, j: bool) -> anyhow::Result<()> {
    if pem {
        print!("{}", c.certificate_pem);
    } else if j {
        print_json(c);
    } else {
        println!("{} ({}), thumbprint {}", c.subject, c.source, c.thumbprint);
        println!("valid {} to {} ({} days left)", c.not_before, c.not_after, c.days_left);
    }
    Ok(())
}

async fn notifications(api: &ApiClient, n: cli::Notifications, j: bool) -> anyhow::Result<()> {
    match n {
        cli::Notifications::Channels => {
            let items: Vec<NotificationChannel> = api.get("/api/v1/notifications/channels", &[]).await?;
            list(
                items,
                j,
                &["ID", "NAME", "KIND", "ENABLED", "EVENTS"],
                &["channel_id", "name", "kind", "enabled", "events"],
            );
        }
        cli::Notifications::Add { name, kind, url, url_env, events, secret_env } => {
            let kind =
                ChannelKind::parse(&kind).with_context(|| format!("--kind {kind}: webhook, slack, teams or email"))?;
            let new = NewNotificationChannel {
                name,
                kind,
                target: url.unwrap_or_default(),
                target_env: url_env,
                secret_env,
                events,
                enabled: true,
            };
            let added: NotificationChannel =
                api.request(Method::POST, "/api/v1/notifications/channels", &[], Some(&new)).await?;
            if j {
                print_json(&added);
            } else {
                println!("added channel {} ({})", added.name, added.channel_id);
            }
        }
        cli::Notifications::Remove { channel_id } => {
            api.send(Method::DELETE, &format!("/api/v1/notifications/channels/{channel_id}"), None::<&()>).await?;
            if !j {
                println!("removed channel {channel_id}");
            }
        }
        cli::Notifications::Test { channel_id } => {
            let path = format!("/api/v1/notifications/channels/{channel_id}/test");
            let queued: TestQueued = api.request(Method::POST, &path, &[], None::<&()>).await?;
            if j {
                print_json(&queued);
            } else {
                println!(
                    "test notification {} queued (wsusctl notifications list shows its delivery)",
                    queued.notification_id
                );
            }
        }
        cli::Notifications::List => {
            let items: Vec<Notification> = api.get("/api/v1/notifications", &[]).await?;
            list(
                items,
                j,
                &["ID", "EVENT", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR"],
                &["notification_id", "event_kind", "state", "attempts", "created_at", "last_error"],
            );
        }
        cli::Notifications::Settings { summary, hour, weekday, not_reported_days, rollup_silent_hours, language } => {
            const PATH: &str = "/api/v1/notifications/settings";
            let every = summary.as_deref().map(|e| word("summary", e)).transpose()?;
            let schedule = SummaryScheduleChange { every, hour, weekday };
            let change = NotificationSettingsChange {
                summary: (schedule != SummaryScheduleChange::default()).then_some(schedule),
                not_reported_days,
                rollup_silent_hours,
                language,
            };
            let shown: NotificationSettings = if change == NotificationSettingsChange::default() {
                api.get(PATH, &[]).await?
            } else {
                api.request(Method::PATCH, PATH, &[], Some(&change)).await?
            };
            print_object(&shown, j);
        }
    }
    Ok(())
}
