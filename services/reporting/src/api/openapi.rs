//! The OpenAPI 3.1 document of the management API, served at `/api/openapi.json`,
//! derived from the handlers' `#[utoipa::path]` attributes and the `wsus_api` types.
//! Tests check that every operation here is routed (and nothing else is), and that
//! answers carry exactly the properties their schemas list.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{cleanup, computers, groups, notifications, publishing, reports, rules, settings, sync, updates};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "WSUS management API",
        description = "Computers, target groups, updates, approvals, automatic approval rules, settings, synchronisation, local publishing, notifications and reports. Every request needs `Authorization: Bearer <token>` with a token of WSUS_API_TOKENS; the reader role may only read. Lists are keyset pages (limit, cursor → next_cursor)."
    ),
    paths(
        computers::list, computers::one, computers::delete, computers::updates,
        groups::list, groups::create, groups::one, groups::change, groups::delete, groups::members,
        groups::add_members, groups::remove_member,
        updates::list, updates::one, updates::eula, updates::accept_eula, updates::approvals_of, updates::approve,
        updates::unapprove, updates::decline, updates::undecline,
        rules::list, rules::create, rules::apply, rules::one, rules::replace, rules::delete,
        settings::get, settings::change, settings::categories,
        sync::status, sync::start, sync::history,
        cleanup::runs, cleanup::start,
        publishing::certificate, publishing::certificate_pem, publishing::generate, publishing::list,
        publishing::publish, publishing::expire, publishing::delete,
        notifications::channels, notifications::add, notifications::remove, notifications::test, notifications::recent,
        notifications::settings, notifications::change_settings,
        reports::per_update, reports::per_computer, reports::downstream_servers,
    ),
    // The enums query parameters name (schemas that answers and bodies use are found on their own).
    components(schemas(
        wsus_api::Error, wsus_api::ComputerState, wsus_api::UpdateState, wsus_api::ApprovalState, wsus_api::CategoryType
    )),
    modifiers(&Common),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme, the error answers, an operationId
/// made of its method and path, a description of its success.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build())
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                operation.operation_id =
                    Some(format!("{method}{}", path.replace("/api/v1", "").replace(['/', '{', '}', '-'], "_")));
                let responses = &mut operation.responses.responses;
                // OpenAPI requires every response to say what it is.
                for answer in responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(r) = answer
                        && r.description.is_empty()
                    {
                        r.description = "Done.".to_owned();
                    }
                }
                responses.insert("400".into(), error("The request is not valid.").into());
                responses.insert("401".into(), error("No valid bearer token.").into());
                if method != "get" {
                    responses.insert("403".into(), error("The reader role cannot change anything.").into());
                    responses.insert("409".into(), error("The change conflicts with the current state.").into());
                }
                if path.contains('{') {
                    responses.insert("404".into(), error("No such object.").into());
                }
                responses.insert("503".into(), error("The database or sync-worker is unavailable.").into());
            }
        }
    }
}

/// The document.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}
