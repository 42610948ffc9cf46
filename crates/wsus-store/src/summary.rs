//! What the console's overview shows at a glance: computers by compliance (all of them,
//! and per group), stored statuses by state, the updates most computers need, when
//! computers last made contact.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::states::{FAILED, INSTALLED, still_needed};
use crate::{Result, direct_groups};

/// Computers by compliance, as `Computer::state` classifies one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Compliance {
    pub up_to_date: i64,
    pub needs_updates: i64,
    pub with_errors: i64,
    pub not_reported: i64,
}

impl Compliance {
    pub fn total(&self) -> i64 {
        self.up_to_date + self.needs_updates + self.with_errors + self.not_reported
    }
}

/// Per computer: failed, needed (incl. downloaded and pending reboot), installed, then
/// the same rule as `Computer::state`.
fn compliance_of_computers() -> String {
    let still_needed = still_needed();
    format!(
        "\
    WITH s AS (SELECT computer_id, bool_or(status = {FAILED}) AS failed, bool_or(status IN {still_needed}) AS needed, \
                      bool_or(status = {INSTALLED}) AS installed \
               FROM update_status GROUP BY computer_id), \
    k AS (SELECT c.computer_id, CASE \
              WHEN COALESCE(s.failed, false) THEN 2 \
              WHEN COALESCE(s.needed, false) THEN 1 \
              WHEN c.last_reported_status_time IS NOT NULL OR c.effective_last_detection_time IS NOT NULL \
                   OR COALESCE(s.installed, false) THEN 0 \
              ELSE 3 END AS compliance \
          FROM computer c LEFT JOIN s USING (computer_id)) "
    )
}

const COUNTS: &str = "\
    count(*) FILTER (WHERE k.compliance = 0) AS up_to_date, count(*) FILTER (WHERE k.compliance = 1) AS needs_updates, \
    count(*) FILTER (WHERE k.compliance = 2) AS with_errors, count(*) FILTER (WHERE k.compliance = 3) AS not_reported";

/// Every computer known here (rolled-up ones included).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.summary.compliance"))]
pub async fn compliance(pool: &PgPool) -> Result<Compliance> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{} SELECT {COUNTS} FROM k", compliance_of_computers())))
        .fetch_one(pool)
        .await?)
}

/// Per target group, its direct members (server-side membership; Unassigned Computers
/// holds the computers in no group); groups without members are left out.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.summary.compliance_by_group"))]
pub async fn compliance_by_group(pool: &PgPool) -> Result<Vec<(Uuid, String, Compliance)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        group_id: Uuid,
        name: String,
        #[sqlx(flatten)]
        counts: Compliance,
    }
    // Only constants are joined into this SQL.
    let (direct, compliance) = (direct_groups(), compliance_of_computers());
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{compliance} SELECT g.group_id, g.name, {COUNTS} FROM k \
         JOIN {direct} m USING (computer_id) JOIN target_group g ON g.group_id = m.group_id \
         GROUP BY g.group_id, g.name ORDER BY lower(g.name), g.group_id"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.group_id, r.name, r.counts)).collect())
}

/// Stored statuses by SummarizationState (index 0 Unknown … 6 InstalledPendingReboot).
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.summary.status_distribution"))]
pub async fn status_distribution(pool: &PgPool) -> Result<[i64; 7]> {
    let rows: Vec<(i16, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM update_status GROUP BY status").fetch_all(pool).await?;
    let mut out = [0i64; 7];
    for (status, n) in rows {
        if let Some(slot) = usize::try_from(status).ok().and_then(|s| out.get_mut(s)) {
            *slot = n;
        }
    }
    Ok(out)
}

/// An update and how many computers need it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Needed {
    pub update_id: Uuid,
    pub title: Option<String>,
    pub kb_article_id: Option<String>,
    pub computers: i64,
}

/// The updates needed (or downloaded, or pending a reboot) by most computers.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.summary.most_needed"))]
pub async fn most_needed(pool: &PgPool, limit: i64) -> Result<Vec<Needed>> {
    let still_needed = still_needed();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT n.update_id, r.title, r.kb_article_id, n.computers FROM \
           (SELECT update_id, count(*) AS computers FROM update_status WHERE status IN {still_needed} \
            GROUP BY update_id ORDER BY count(*) DESC, update_id LIMIT $1) n \
         LEFT JOIN LATERAL (SELECT title, kb_article_id FROM revision WHERE update_id = n.update_id \
                            ORDER BY revision_number DESC LIMIT 1) r ON true \
         ORDER BY n.computers DESC, n.update_id"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Computers in contact in each of the last `hours` UTC hours (oldest first, every hour
/// present), from computer_contact_hour: a computer that scans every hour counts in
/// every hour.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.summary.contacts_by_hour"))]
pub async fn contacts_by_hour(pool: &PgPool, hours: i32) -> Result<Vec<(DateTime<Utc>, i64)>> {
    Ok(sqlx::query_as(
        "SELECT h.hour, (SELECT count(*) FROM computer_contact_hour c WHERE c.hour = h.hour) FROM \
           generate_series(date_trunc('hour', now(), 'UTC') - make_interval(hours => $1 - 1), \
                           date_trunc('hour', now(), 'UTC'), interval '1 hour') AS h(hour) \
         ORDER BY h.hour",
    )
    .bind(hours)
    .fetch_all(pool)
    .await?)
}

/// Computers that have not reported for `days` days (no contact, status report or
/// roll-up since): all of them, and per target group (direct members; groups without
/// such computers left out). Computers that never reported at all are `not_reported` in
/// [`Compliance`], not here.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.summary.silent_computers"))]
pub async fn silent_computers(pool: &PgPool, days: i32) -> Result<(i64, Vec<(Uuid, i64)>)> {
    const SILENT: &str = "greatest(c.last_contact_at, c.last_reported_status_time, c.last_status_rollup_time) \
                          < now() - make_interval(days => $1)";
    let (total,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM computer c WHERE {SILENT}")))
            .bind(days)
            .fetch_one(pool)
            .await?;
    // Only constants are joined into this SQL.
    let direct = direct_groups();
    let groups = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT m.group_id, count(*) FROM computer c JOIN {direct} m USING (computer_id) WHERE {SILENT} \
         GROUP BY m.group_id"
    )))
    .bind(days)
    .fetch_all(pool)
    .await?;
    Ok((total, groups))
}
