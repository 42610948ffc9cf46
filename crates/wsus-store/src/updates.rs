//! Updates as the management API shows them: search by KB, title, classification and
//! product; one update's details, approvals and status counts; per-update and
//! per-computer summaries (WSUS's GetSummariesPerUpdate / GetSummariesPerComputerTarget).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;
use crate::computers::StatusCounts;
use crate::states::{DOWNLOADED, FAILED, INSTALLED, INSTALLED_PENDING_REBOOT, NEEDED, NOT_APPLICABLE, UNKNOWN};
use crate::{direct_groups, keyset, like_pattern};

/// An update (its latest revision), as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Update {
    pub update_id: Uuid,
    pub revision_number: i32,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    pub update_type: String,
    pub publication_state: String,
    pub creation_date: Option<DateTime<Utc>>,
    pub eula_id: Option<Uuid>,
    pub eula_accepted: bool,
    pub declined: bool,
    /// Groups with a live approval.
    pub approved_group_ids: Vec<Uuid>,
    /// Classification and product ids it belongs to.
    pub category_ids: Vec<Uuid>,
    /// Updates in the catalog that supersede it.
    pub superseded_by: Vec<Uuid>,
}

/// Which approval state to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalFilter {
    Approved,
    Unapproved,
    Declined,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateFilter {
    /// Part of the title or the KB number.
    pub search: Option<String>,
    pub kb: Option<String>,
    /// A classification or product (category update id); more than one = all of them.
    pub categories: Vec<Uuid>,
    pub approval: Option<ApprovalFilter>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// An update's columns over `r`, its latest revision.
const UPDATE_COLUMNS: &str = "\
    SELECT r.update_id, r.revision_number, r.title, r.kb_article_id, r.update_type, r.publication_state, \
        r.creation_date, r.eula_id, \
        EXISTS (SELECT 1 FROM accepted_eula e WHERE e.eula_id = r.eula_id) AS eula_accepted, \
        EXISTS (SELECT 1 FROM declined_update d WHERE d.update_id = r.update_id) AS declined, \
        COALESCE((SELECT array_agg(DISTINCT p.group_id) FROM deployment p \
                  WHERE p.update_id = r.update_id AND p.deleted_at IS NULL), '{}') AS approved_group_ids, \
        COALESCE((SELECT array_agg(DISTINCT c.category_update_id) FROM revision_category c \
                  WHERE c.revision_id = r.revision_id), '{}') AS category_ids, \
        COALESCE((SELECT array_agg(DISTINCT s.update_id) FROM supersedence x JOIN revision s ON s.revision_id = x.revision_id \
                  WHERE x.superseded_update_id = r.update_id), '{}') AS superseded_by ";

const LATEST_REVISIONS: &str = "\
    FROM (SELECT DISTINCT ON (update_id) * FROM revision WHERE update_type IN ('Software', 'Driver') \
          ORDER BY update_id, revision_number DESC) r ";

/// The filter's conditions over `r`: $2 search pattern, $3 KB, $4 categories.
fn conditions(f: &UpdateFilter, sql: &mut String) {
    if f.search.is_some() {
        sql.push_str(" AND (r.title ILIKE $2 OR r.kb_article_id ILIKE $2)");
    }
    if f.kb.is_some() {
        sql.push_str(" AND r.kb_article_id = $3");
    }
    if !f.categories.is_empty() {
        sql.push_str(
            " AND (SELECT count(DISTINCT c.category_update_id) FROM revision_category c \
               WHERE c.revision_id = r.revision_id AND c.category_update_id = ANY($4)) = cardinality($4)",
        );
    }
    match f.approval {
        Some(ApprovalFilter::Approved) => sql.push_str(
            " AND EXISTS (SELECT 1 FROM deployment p WHERE p.update_id = r.update_id AND p.deleted_at IS NULL)",
        ),
        Some(ApprovalFilter::Unapproved) => sql.push_str(
            " AND NOT EXISTS (SELECT 1 FROM deployment p WHERE p.update_id = r.update_id AND p.deleted_at IS NULL) \
              AND NOT EXISTS (SELECT 1 FROM declined_update d WHERE d.update_id = r.update_id)",
        ),
        Some(ApprovalFilter::Declined) => {
            sql.push_str(" AND EXISTS (SELECT 1 FROM declined_update d WHERE d.update_id = r.update_id)")
        }
        None => {}
    }
}

fn kb_number(f: &UpdateFilter) -> Option<String> {
    f.kb.as_deref().map(|k| k.trim_start_matches("KB").trim_start_matches("kb").to_owned())
}

/// A page of updates (latest revisions of software and drivers), by update id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.list"))]
pub async fn list(pool: &PgPool, f: &UpdateFilter) -> Result<(Vec<Update>, Option<Uuid>)> {
    let mut sql = format!("{UPDATE_COLUMNS}{LATEST_REVISIONS} WHERE ($1::uuid IS NULL OR r.update_id > $1)");
    conditions(f, &mut sql);
    sql.push_str(" ORDER BY r.update_id LIMIT $5");
    let rows: Vec<Update> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(f.after)
        .bind(f.search.as_deref().map(like_pattern))
        .bind(kb_number(f))
        .bind(&f.categories)
        .bind(f.limit + 1)
        .fetch_all(pool)
        .await?;
    Ok(keyset(rows, f.limit, |u| u.update_id, |u| u))
}

/// Where a page of updates newest first continues: the last one's release date and id.
pub type NewestKey = (Option<DateTime<Utc>>, Uuid);

/// A page of updates, newest release first (undated ones last), read in the order of the
/// index revision_newest so a page costs a page whatever the catalog's size; `f.after`
/// is ignored, `after` continues.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.list_newest"))]
pub async fn list_newest(
    pool: &PgPool,
    f: &UpdateFilter,
    after: Option<NewestKey>,
) -> Result<(Vec<Update>, Option<NewestKey>)> {
    // The sort key is the index's expression exactly; a revision is listed when it is its
    // update's latest. The position is a condition only when there is one: "$1 IS NULL
    // OR ..." would not bound the index scan in a generic plan.
    let mut sql = format!(
        "{UPDATE_COLUMNS} FROM revision r WHERE r.update_type IN ('Software', 'Driver') \
         AND NOT EXISTS (SELECT 1 FROM revision n WHERE n.update_id = r.update_id AND n.revision_number > r.revision_number)"
    );
    if after.is_some() {
        sql.push_str(
            " AND (COALESCE(r.creation_date, '-infinity'::timestamptz), r.update_id) \
               < (COALESCE($6::timestamptz, '-infinity'::timestamptz), $1)",
        );
    }
    conditions(f, &mut sql);
    sql.push_str(" ORDER BY COALESCE(r.creation_date, '-infinity'::timestamptz) DESC, r.update_id DESC LIMIT $5");
    let rows: Vec<Update> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after.map(|a| a.1))
        .bind(f.search.as_deref().map(like_pattern))
        .bind(kb_number(f))
        .bind(&f.categories)
        .bind(f.limit + 1)
        .bind(after.and_then(|a| a.0))
        .fetch_all(pool)
        .await?;
    Ok(keyset(rows, f.limit, |u| (u.creation_date, u.update_id), |u| u))
}

/// One update; None when not in the catalog (as software or a driver).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.get"))]
pub async fn get(pool: &PgPool, update_id: Uuid) -> Result<Option<Update>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{UPDATE_COLUMNS}{LATEST_REVISIONS} WHERE r.update_id = $1")))
        .bind(update_id)
        .fetch_optional(pool)
        .await?)
}

/// The EULA text of an update's latest revision, in a language (falling back to English, then any).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.eula_text"))]
pub async fn eula_text(pool: &PgPool, update_id: Uuid, language: &str) -> Result<Option<(Uuid, String)>> {
    let row: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT r.eula_id, f.body FROM (SELECT * FROM revision WHERE update_id = $1 ORDER BY revision_number DESC LIMIT 1) r \
         JOIN fragment f ON f.revision_id = r.revision_id AND f.kind = 'Eula' \
         WHERE r.eula_id IS NOT NULL AND f.compression = 'none' \
         ORDER BY f.locale = $2 DESC, f.locale = 'en' DESC, f.locale LIMIT 1",
    )
    .bind(update_id)
    .bind(language)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, body)| (id, String::from_utf8_lossy(&body).into_owned())))
}

/// How many computers are in each state for one update. Computers with no stored status
/// are NotApplicable once they reported a complete scan, Unknown before.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.status_counts"))]
pub async fn status_counts(pool: &PgPool, update_id: Uuid, group_id: Option<Uuid>) -> Result<StatusCounts> {
    let (mut counts,): (sqlx::types::Json<StatusCounts>,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(x) FROM ({}) x",
        per_update_counts("$1::uuid", "$2")
    )))
    .bind(update_id)
    .bind(group_id)
    .fetch_one(pool)
    .await?;
    counts.0.not_applicable = counts.0.not_applicable.max(0);
    counts.0.unknown = counts.0.unknown.max(0);
    Ok(counts.0)
}

/// How many of each group's direct members are in each state for one update, every group
/// at once (the per-group form of [`status_counts`], without subgroups: a computer in two
/// subgroups would otherwise count twice in their parent). Read through the update's
/// statuses (an index range) and each group's member and scan counts.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.status_counts_by_group"))]
pub async fn status_counts_by_group(pool: &PgPool, update_id: Uuid) -> Result<Vec<(Uuid, StatusCounts)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        group_id: Uuid,
        #[sqlx(flatten)]
        counts: StatusCounts,
    }
    // Only a constant is joined into this SQL.
    let direct = direct_groups();
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH members AS (SELECT m.group_id, count(*) AS computers, \
                                 count(*) FILTER (WHERE c.effective_last_detection_time IS NOT NULL) AS scanned \
                          FROM {direct} m JOIN computer c USING (computer_id) GROUP BY m.group_id), \
              st AS (SELECT m.group_id, u.status, c.effective_last_detection_time IS NOT NULL AS scanned \
                     FROM update_status u JOIN {direct} m USING (computer_id) \
                     JOIN computer c USING (computer_id) WHERE u.update_id = $1) \
         SELECT g.group_id, \
                count(st.status) FILTER (WHERE st.status = {INSTALLED}) AS installed, \
                count(st.status) FILTER (WHERE st.status = {NEEDED}) AS needed, \
                count(st.status) FILTER (WHERE st.status = {DOWNLOADED}) AS downloaded, \
                count(st.status) FILTER (WHERE st.status = {FAILED}) AS failed, \
                count(st.status) FILTER (WHERE st.status = {INSTALLED_PENDING_REBOOT}) AS installed_pending_reboot, \
                count(st.status) FILTER (WHERE st.status = {NOT_APPLICABLE}) \
                  + COALESCE(max(mb.scanned), 0) - count(st.status) FILTER (WHERE st.scanned) AS not_applicable, \
                count(st.status) FILTER (WHERE st.status = {UNKNOWN}) \
                  + COALESCE(max(mb.computers - mb.scanned), 0) - count(st.status) FILTER (WHERE NOT st.scanned) AS unknown \
         FROM target_group g LEFT JOIN members mb ON mb.group_id = g.group_id \
         LEFT JOIN st ON st.group_id = g.group_id \
         GROUP BY g.group_id ORDER BY g.group_id"
    )))
    .bind(update_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut c = r.counts;
            c.not_applicable = c.not_applicable.max(0);
            c.unknown = c.unknown.max(0);
            (r.group_id, c)
        })
        .collect())
}

/// SQL of the counts of one update (`update` is an SQL expression), over the computers in
/// group `group` (a uuid parameter; NULL = every computer), with its subgroups.
fn per_update_counts(update: &str, group: &str) -> String {
    format!(
        "WITH RECURSIVE sub(g) AS (SELECT {group}::uuid UNION SELECT t.group_id FROM target_group t JOIN sub ON t.parent_group_id = sub.g), \
         scope AS (SELECT c.computer_id, c.effective_last_detection_time IS NOT NULL AS scanned FROM computer c \
                   WHERE {group}::uuid IS NULL OR EXISTS (SELECT 1 FROM computer_group_membership m \
                         WHERE m.computer_id = c.computer_id AND m.group_id IN (SELECT g FROM sub))), \
         st AS (SELECT s.scanned, u.status FROM scope s JOIN update_status u ON u.computer_id = s.computer_id AND u.update_id = {update}) \
         SELECT (SELECT count(*) FROM st WHERE status = {INSTALLED}) AS installed, \
                (SELECT count(*) FROM st WHERE status = {NEEDED}) AS needed, \
                (SELECT count(*) FROM st WHERE status = {DOWNLOADED}) AS downloaded, \
                (SELECT count(*) FROM st WHERE status = {FAILED}) AS failed, \
                (SELECT count(*) FROM st WHERE status = {INSTALLED_PENDING_REBOOT}) AS installed_pending_reboot, \
                (SELECT count(*) FROM st WHERE status = {NOT_APPLICABLE}) \
                  + (SELECT count(*) FROM scope WHERE scanned) - (SELECT count(*) FROM st WHERE scanned) AS not_applicable, \
                (SELECT count(*) FROM st WHERE status = {UNKNOWN}) \
                  + (SELECT count(*) FROM scope WHERE NOT scanned) - (SELECT count(*) FROM st WHERE NOT scanned) AS unknown"
    )
}

/// One update's summary (GetSummariesPerUpdate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateSummary {
    pub update_id: Uuid,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

/// A page of per-update summaries over the updates that are approved or that some
/// computer reported, by update id.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.updates.summaries_per_update"))]
pub async fn summaries_per_update(
    pool: &PgPool,
    group_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<UpdateSummary>, Option<Uuid>)> {
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM (SELECT update_id AS id FROM deployment WHERE deleted_at IS NULL \
                         UNION SELECT DISTINCT update_id FROM update_status) x \
         WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let (ids, next) = keyset(ids, limit, |(u,)| *u, |(u,)| u);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let counts = status_counts(pool, id, group_id).await?;
        let named: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT title, kb_article_id FROM revision WHERE update_id = $1 ORDER BY revision_number DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let (title, kb_article_id) = named.unwrap_or_default();
        out.push(UpdateSummary { update_id: id, title, kb_article_id, counts });
    }
    Ok((out, next))
}
