//! SimpleAuth: GetAuthorizationCookie (MS-WUSP 3.1.5.3).

use base64::Engine as _;
use wsus_cookie::AuthorizationCookie;
use wsus_soap::ErrorCode;
use wsus_soap::wusp::{GetAuthorizationCookieRequest, encode_authorization_cookie};

use crate::Gateway;
use crate::soap::{OpResult, invalid};

pub const PLUG_IN_ID: &str = "SimpleTargeting";

pub fn get_authorization_cookie(gw: &Gateway, op: &wsus_soap::Element) -> OpResult {
    let req = GetAuthorizationCookieRequest::decode(op).map_err(invalid)?;
    let server = gw.memory.server.load_full().ok_or((ErrorCode::ServerBusy, "starting".to_owned()))?;
    let cookie = AuthorizationCookie {
        server_id: server.identity.server_id,
        client_id: req.client_id,
        dns_name: req.dns_name,
        target_group_name: req.target_group_name,
        issued_at: chrono::Utc::now().timestamp(),
    };
    let data = base64::engine::general_purpose::STANDARD.encode(cookie.seal(&server.keys));
    Ok(encode_authorization_cookie(PLUG_IN_ID, &data))
}
