//! This server's identity (ServerID and FQDN), created on first start.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;
use crate::settings::{self, ClientConfig, Seed};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub server_id: Uuid,
    pub fqdn: String,
    pub created_at: DateTime<Utc>,
    /// True for the one start that created the identity (and seeded the settings).
    pub first_start: bool,
}

/// Returns the stored identity, creating it on first start from the configured values
/// (or `generated_id` / `generated_fqdn` when unset) and seeding the administrator
/// settings in the same transaction. A configured value later wins over the stored one.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.identity.ensure"))]
pub async fn ensure(
    pool: &PgPool,
    configured_id: Option<Uuid>,
    configured_fqdn: Option<&str>,
    fallback_fqdn: &str,
    seed: &Seed,
) -> Result<Identity> {
    let mut tx = pool.begin().await?;
    let id = configured_id.unwrap_or_else(Uuid::new_v4);
    let fqdn = configured_fqdn.unwrap_or(fallback_fqdn);
    let created: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "INSERT INTO server_identity (server_id, fqdn) VALUES ($1, $2) \
         ON CONFLICT (singleton) DO NOTHING RETURNING created_at",
    )
    .bind(id)
    .bind(fqdn)
    .fetch_optional(&mut *tx)
    .await?;

    if let Some((created_at,)) = created {
        apply_seed(&mut tx, fqdn, seed).await?;
        tx.commit().await?;
        tracing::info!(server_id = %id, fqdn, "first start: identity created and settings seeded");
        return Ok(Identity { server_id: id, fqdn: fqdn.to_owned(), created_at, first_start: true });
    }

    let (mut server_id, mut stored_fqdn, created_at): (Uuid, String, DateTime<Utc>) =
        sqlx::query_as("SELECT server_id, fqdn, created_at FROM server_identity").fetch_one(&mut *tx).await?;
    let wanted_id = configured_id.unwrap_or(server_id);
    let wanted_fqdn = configured_fqdn.unwrap_or(&stored_fqdn).to_owned();
    if wanted_id != server_id || wanted_fqdn != stored_fqdn {
        tracing::warn!(old = %server_id, new = %wanted_id, fqdn = %wanted_fqdn,
            "configured identity differs from the stored one; the configuration wins");
        sqlx::query("UPDATE server_identity SET server_id = $1, fqdn = $2, updated_at = now()")
            .bind(wanted_id)
            .bind(&wanted_fqdn)
            .execute(&mut *tx)
            .await?;
        server_id = wanted_id;
        stored_fqdn = wanted_fqdn;
    }
    tx.commit().await?;
    Ok(Identity { server_id, fqdn: stored_fqdn, created_at, first_start: false })
}

async fn apply_seed(tx: &mut sqlx::PgConnection, fqdn: &str, seed: &Seed) -> Result<()> {
    settings::put_if_absent(&mut *tx, settings::CLIENT_CONFIG, &ClientConfig::for_server(fqdn)).await?;
    settings::put_if_absent(&mut *tx, settings::SYNC_PRODUCTS, &seed.products).await?;
    settings::put_if_absent(&mut *tx, settings::SYNC_CLASSIFICATIONS, &seed.classifications).await?;
    settings::put_if_absent(
        &mut *tx,
        settings::SYNC_SCHEDULE,
        &settings::Schedule { syncs_per_day: seed.syncs_per_day },
    )
    .await?;
    settings::put_if_absent(&mut *tx, settings::CONTENT_MODE, &seed.content_mode).await?;
    // "all" switches on every language; otherwise exactly the named ones.
    let all = seed.languages.iter().any(|l| l == "all");
    sqlx::query("UPDATE language SET enabled = CASE WHEN $1 THEN short_name = 'all' ELSE short_name = ANY($2) END")
        .bind(all)
        .bind(&seed.languages)
        .execute(&mut *tx)
        .await?;
    let unknown: Vec<(String,)> = sqlx::query_as(
        "SELECT l FROM unnest($1::text[]) AS l WHERE l <> 'all' AND NOT EXISTS (SELECT 1 FROM language WHERE short_name = l)",
    )
    .bind(&seed.languages)
    .fetch_all(&mut *tx)
    .await?;
    for (l,) in unknown {
        tracing::warn!(language = %l, "WSUS_SYNC_LANGUAGES names a language this server does not know; ignored");
    }
    Ok(())
}

/// The stored identity, if a service has created it.
#[tracing::instrument(name = "store", skip_all, fields(otel.name = "store.identity.current"))]
pub async fn current(pool: &PgPool) -> Result<Option<Identity>> {
    let row: Option<(Uuid, String, DateTime<Utc>)> =
        sqlx::query_as("SELECT server_id, fqdn, created_at FROM server_identity").fetch_optional(pool).await?;
    Ok(row.map(|(server_id, fqdn, created_at)| Identity { server_id, fqdn, created_at, first_start: false }))
}
