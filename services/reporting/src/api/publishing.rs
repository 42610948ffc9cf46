//! Local publishing: the signing certificate, and packages published from a Software
//! Distribution Package definition and an installer (done by sync-worker, which holds
//! the content store and the key; the list is read from the store).

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::Field;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::handler::Handler as _;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use uuid::Uuid;
use wsus_api::{GenerateCertificate, Published, PublishedDeleted, PublishedPackage, SigningCertificate};
use wsus_rpc::sync::{PublishEnd, PublishHeader, PublishRequest, publish_request::Part};

use super::{Api, ApiError, ApiResult, Routes, wire};
use crate::admin::Actor;

/// The largest upload: a Cabinet's largest installer (sync-worker's limit) and its definition.
const MAX_UPLOAD: usize = 0x7FF0_0000 + 4 * 1024 * 1024;
/// The largest package definition (within gRPC's 4 MiB message, with the rest of the header).
const MAX_DEFINITION: usize = 2 * 1024 * 1024;
/// Installer bytes per message to sync-worker (gRPC's default message limit is 4 MiB).
const CHUNK: usize = 1024 * 1024;

pub(super) fn routes(r: Routes) -> Routes {
    r.add("GET", "/api/v1/publishing/certificate", certificate)
        .add("POST", "/api/v1/publishing/certificate", generate)
        .add("GET", "/api/v1/publishing/certificate/pem", certificate_pem)
        .add("GET", "/api/v1/publishing/packages", list)
        .add("POST", "/api/v1/publishing/packages", publish.layer(DefaultBodyLimit::max(MAX_UPLOAD)))
        .add("POST", "/api/v1/publishing/packages/{update_id}/expire", expire)
        .add("DELETE", "/api/v1/publishing/packages/{update_id}", delete)
}

#[utoipa::path(get, path = "/api/v1/publishing/certificate", tag = "publishing",
    summary = "The certificate published packages are signed with (404 before one is configured or generated)",
    responses((status = 200, body = SigningCertificate)))]
async fn certificate(State(api): State<Arc<Api>>) -> ApiResult<Json<SigningCertificate>> {
    Ok(Json(api.admin.signing_certificate().await?))
}

#[utoipa::path(get, path = "/api/v1/publishing/certificate/pem", tag = "publishing",
    summary = "The signing certificate as a PEM file, to distribute to clients (Trusted Publishers, and Trusted Root when self-signed)",
    responses((status = 200, content_type = "application/x-pem-file", body = String)))]
async fn certificate_pem(State(api): State<Arc<Api>>) -> ApiResult<impl IntoResponse> {
    let c = api.admin.signing_certificate().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"wsus-signing.pem\"".to_owned()),
        ],
        c.certificate_pem,
    ))
}

#[utoipa::path(post, path = "/api/v1/publishing/certificate", tag = "publishing",
    summary = "Generate a self-signed signing certificate (409 when one is configured from files)",
    request_body = GenerateCertificate, responses((status = 201, body = SigningCertificate)))]
async fn generate(
    State(api): State<Arc<Api>>,
    body: Option<Json<GenerateCertificate>>,
) -> ApiResult<(StatusCode, Json<SigningCertificate>)> {
    let request = body.map(|Json(b)| b).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(api.admin.generate_signing_certificate(request, Actor::Api).await?)))
}

#[utoipa::path(get, path = "/api/v1/publishing/packages", tag = "publishing",
    summary = "Packages published here, newest change first", responses((status = 200, body = Vec<PublishedPackage>)))]
async fn list(State(api): State<Arc<Api>>) -> ApiResult<Json<Vec<PublishedPackage>>> {
    let packages = wsus_store::publishing::list(&api.pool).await?;
    Ok(Json(packages.into_iter().map(wire::published_package).collect()))
}

#[utoipa::path(post, path = "/api/v1/publishing/packages", tag = "publishing",
    summary = "Publish a package: multipart/form-data with `definition` (the Software Distribution Package XML) first, then `installer` (the file it runs; leave it out to publish metadata only). The installer is wrapped in a Cabinet, signed and stored; the update appears in the catalog, unapproved. Publishing the same PackageID again makes its next revision",
    request_body(content_type = "multipart/form-data", content = String),
    responses((status = 201, body = Published)))]
async fn publish(State(api): State<Arc<Api>>, mut form: Multipart) -> ApiResult<(StatusCode, Json<Published>)> {
    let (parts, rx) = tokio::sync::mpsc::channel::<PublishRequest>(4);
    // The upload is passed on as it arrives; the end is sent only once it is whole, so a
    // cut-off upload publishes nothing.
    let upload = async move {
        let bad = |e: axum::extract::multipart::MultipartError| ApiError::bad_request(format!("multipart: {e}"));
        let first =
            form.next_field().await.map_err(bad)?.ok_or_else(|| ApiError::bad_request("no `definition` part"))?;
        if first.name() != Some("definition") {
            return Err(ApiError::bad_request("the `definition` part comes first"));
        }
        let definition = text(first, MAX_DEFINITION).await?;
        let installer = form.next_field().await.map_err(bad)?;
        let installer_name = match &installer {
            None => String::new(),
            Some(f) if f.name() == Some("installer") => f
                .file_name()
                .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::bad_request("the `installer` part has no file name"))?,
            Some(_) => return Err(ApiError::bad_request("after `definition`, only an `installer` part")),
        };
        let header = PublishHeader { definition, installer_name, by: Actor::Api.name().to_owned() };
        if parts.send(PublishRequest { part: Some(Part::Header(header)) }).await.is_err() {
            return Ok(());
        }
        let mut size = 0u64;
        if let Some(mut field) = installer {
            let mut buffer = Vec::with_capacity(CHUNK);
            while let Some(bytes) = field.chunk().await.map_err(bad)? {
                size += bytes.len() as u64;
                buffer.extend_from_slice(&bytes);
                if buffer.len() >= CHUNK {
                    let chunk = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK));
                    if parts.send(PublishRequest { part: Some(Part::InstallerChunk(chunk)) }).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if !buffer.is_empty() {
                let _ = parts.send(PublishRequest { part: Some(Part::InstallerChunk(buffer)) }).await;
            }
        }
        if form.next_field().await.map_err(bad)?.is_some() {
            return Err(ApiError::bad_request("one `definition` and at most one `installer`"));
        }
        let _ = parts.send(PublishRequest { part: Some(Part::End(PublishEnd { installer_size: size })) }).await;
        Ok::<(), ApiError>(())
    };
    let call = api.admin.publish(tokio_stream::wrappers::ReceiverStream::new(rx), Actor::Api);
    let (uploaded, published) = tokio::join!(upload, call);
    // What was wrong with the upload, rather than sync-worker's view of a stream cut short.
    uploaded?;
    Ok((StatusCode::CREATED, Json(published?)))
}

async fn text(mut field: Field<'_>, limit: usize) -> ApiResult<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::bad_request(format!("multipart: {e}")))? {
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::bad_request(format!("the definition is over {limit} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("the definition is not UTF-8"))
}

#[utoipa::path(post, path = "/api/v1/publishing/packages/{update_id}/expire", tag = "publishing",
    summary = "Expire a published package: its next revision says so and it is declined, so no client is offered it",
    params(("update_id" = Uuid, Path)), responses((status = 200, body = Published)))]
async fn expire(State(api): State<Arc<Api>>, Path(update_id): Path<Uuid>) -> ApiResult<Json<Published>> {
    Ok(Json(api.admin.expire_published(update_id, Actor::Api).await?))
}

#[utoipa::path(delete, path = "/api/v1/publishing/packages/{update_id}", tag = "publishing",
    summary = "Delete an unapproved published package (409 while approved)",
    params(("update_id" = Uuid, Path)), responses((status = 200, body = PublishedDeleted)))]
async fn delete(State(api): State<Arc<Api>>, Path(update_id): Path<Uuid>) -> ApiResult<Json<PublishedDeleted>> {
    Ok(Json(PublishedDeleted { revisions_deleted: api.admin.delete_published(update_id, Actor::Api).await? }))
}
