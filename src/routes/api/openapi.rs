//! `GET /openapi.json`: the API's OpenAPI 3.1 document, assembled by `utoipa` from the
//! `#[utoipa::path]` annotations on the handlers and the types they name. Every answer's
//! body is the very type the handler serialises, so the document can't drift from it;
//! tests/api/openapi.rs checks live answers and routes against the document all the same.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::schemas::*;
use super::{access_tokens, catalogue, clusters, health, keys, secret_scanning, token, verify};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyward API",
        description = "Keyward's JSON API. Every route but `/healthz`, `/openapi.json`, \
            `/verify` (which answers the guard's own check) and `/secret-scanning/report` needs \
            HTTP Basic credentials: the token's key as the user name and its secret as the \
            password. Every error is the envelope `{\"errors\": [...], \"status\": N}`. A \
            method a path doesn't list is a 405 (`MethodNotAllowed`); a path the API doesn't \
            have is a 404.",
        license(name = "MIT")
    ),
    paths(
        health::check,
        health::ready,
        document,
        clusters::list,
        clusters::create,
        clusters::show,
        clusters::update,
        clusters::delete,
        catalogue::plans,
        catalogue::plan,
        catalogue::spaces,
        catalogue::space,
        catalogue::releases,
        catalogue::release,
        token::show,
        token::revoke_itself,
        access_tokens::list,
        access_tokens::create,
        access_tokens::show,
        access_tokens::change,
        access_tokens::revoke,
        access_tokens::roll,
        verify::verify,
        secret_scanning::report,
        keys::verify,
    ),
    components(
        schemas(ErrorEnvelope),
        responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Unprocessable,
        TooManyRequests,
        Unavailable
    )),
    modifiers(&BasicAuth),
    tags(
        (name = "clusters", description = "The account's clusters, in Bonsai's shapes"),
        (name = "catalogue", description = "Plans, spaces and releases"),
        (name = "tokens", description = "The calling token, and the account's tokens under the `tokens` scope"),
        (name = "integrations", description = "Forward auth and leaked-secret reports"),
        (name = "keys", description = "Verifying a key of the account from your own service, under the `verify` scope"),
        (name = "meta", description = "Health and this document"),
    )
)]
pub struct ApiDoc;

/// The security scheme every guarded path names.
struct BasicAuth;

impl Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The token's key as the user name, its secret as the password.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, serialised once.
pub fn json() -> &'static Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        Bytes::from(
            ApiDoc::openapi()
                .to_json()
                .expect("the OpenAPI document serialises"),
        )
    })
}

/// The API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "This document", content_type = "application/json"),
        (status = 422, response = Unprocessable),
    )
)]
pub async fn document() -> HttpResponse {
    super::json_bytes(StatusCode::OK, json().clone())
}
