//! An authorized conversation with the upstream: the cookie kept while it has time left,
//! renewed when the upstream refuses it.

use chrono::Utc;
use uuid::Uuid;
use wsus_soap::Element;
use wsus_soap::wsusss::{self, RevisionFilter, dss};
use wsus_soap::wusp::Cookie;
use wsus_store::PgPool;

use super::SyncError;
use super::upstream::{SERVER_SYNC, Upstream, is_microsoft_update};

/// A cookie this close to expiry is renewed before the sync starts.
const COOKIE_MARGIN: chrono::Duration = chrono::Duration::minutes(10);

/// Who this server is to its upstream.
#[derive(Debug, Clone)]
pub struct Me {
    pub server_id: Uuid,
    pub fqdn: String,
}

/// An authorized conversation with the upstream.
pub(super) struct Session {
    pub(super) upstream: Upstream,
    pool: PgPool,
    pub(super) url: String,
    me: Me,
    pub(super) cookie: Cookie,
}

impl Session {
    /// Reuses the cookie in `state` while it has time left, else authorizes.
    pub(super) async fn open(
        pool: &PgPool,
        upstream: Upstream,
        url: &str,
        me: Me,
        state: &wsus_store::dss::UpstreamState,
    ) -> Result<Self, SyncError> {
        let saved = match (state.cookie_expiration, &state.cookie_encrypted_data) {
            (Some(exp), Some(data)) if exp > Utc::now() + COOKIE_MARGIN => {
                Some(Cookie { expiration: exp, encrypted_data: Some(String::from_utf8_lossy(data).into_owned()) })
            }
            _ => None,
        };
        let mut session = Session {
            upstream,
            pool: pool.clone(),
            url: url.to_owned(),
            me,
            cookie: Cookie { expiration: Utc::now(), encrypted_data: None },
        };
        match saved {
            Some(c) => session.cookie = c,
            None => session.authorize().await?,
        }
        Ok(session)
    }

    /// GetAuthConfig, the plug-in's GetAuthorizationCookie, GetCookie.
    pub(super) async fn authorize(&mut self) -> Result<(), SyncError> {
        let (_, response) = self
            .upstream
            .call(SERVER_SYNC, &dss::action("GetAuthConfig"), "GetAuthConfig", &dss::get_auth_config())
            .await?;
        let result = dss::result(&response, "GetAuthConfig").map_err(|e| SyncError::protocol("GetAuthConfig", e))?;
        let plug_ins = dss::auth_plug_ins(result).map_err(|e| SyncError::protocol("GetAuthConfig", e))?;
        let (plug_in, service) = plug_ins
            .iter()
            .find(|(id, _)| id == "DssTargeting")
            .or(plug_ins.first())
            .cloned()
            .ok_or_else(|| SyncError::protocol("GetAuthConfig", "no authorization plug-in"))?;
        // Microsoft Update authorizes anonymously: the all-zero GUID as name and id.
        let body = if is_microsoft_update(&self.url) {
            dss::get_authorization_cookie(&Uuid::nil().to_string(), Uuid::nil())
        } else {
            dss::get_authorization_cookie(&self.me.fqdn, self.me.server_id)
        };
        let (_, response) =
            self.upstream.call(&service, &dss::dss_auth_action(), "GetAuthorizationCookie", &body).await?;
        let result = dss::result(&response, "GetAuthorizationCookie")
            .map_err(|e| SyncError::protocol("GetAuthorizationCookie", e))?;
        let (plug_in_id, data) =
            dss::authorization_cookie(result).map_err(|e| SyncError::protocol("GetAuthorizationCookie", e))?;
        let plug_in_id = if plug_in_id.is_empty() { plug_in } else { plug_in_id };
        let body = dss::get_cookie(&plug_in_id, &data, wsusss::PROTOCOL_VERSION);
        let (_, response) = self.upstream.call(SERVER_SYNC, &dss::action("GetCookie"), "GetCookie", &body).await?;
        let cookie = dss::result(&response, "GetCookie")
            .and_then(dss::cookie_of)
            .map_err(|e| SyncError::protocol("GetCookie", e))?;
        wsus_store::dss::save_cookie(
            &self.pool,
            &self.url,
            &plug_in_id,
            data.as_bytes(),
            cookie.expiration,
            cookie.encrypted_data.as_deref().unwrap_or_default().as_bytes(),
        )
        .await?;
        tracing::info!(upstream = %self.url, expires = %cookie.expiration, "authorized by the upstream server");
        self.cookie = cookie;
        Ok(())
    }

    /// A server-sync call with the cookie; a refused cookie is renewed once.
    pub(super) async fn call(
        &mut self,
        op: &str,
        body: impl Fn(&Cookie) -> String,
    ) -> Result<(String, Element), SyncError> {
        match self.upstream.call(SERVER_SYNC, &dss::action(op), op, &body(&self.cookie)).await {
            Err(e) if e.is_cookie_fault() => {
                tracing::info!(upstream = %self.url, "cookie refused; authorizing again");
                wsus_store::dss::drop_cookie(&self.pool, &self.url).await?;
                self.authorize().await?;
                self.upstream.call(SERVER_SYNC, &dss::action(op), op, &body(&self.cookie)).await
            }
            other => other,
        }
    }

    pub(super) async fn revision_ids(&mut self, filter: &RevisionFilter) -> Result<dss::RevisionIdList, SyncError> {
        let (_, response) = self.call("GetRevisionIdList", |c| dss::get_revision_id_list(c, filter)).await?;
        dss::result(&response, "GetRevisionIdList")
            .and_then(dss::revision_id_list)
            .map_err(|e| SyncError::protocol("GetRevisionIdList", e))
    }
}
