//! What the API's OpenAPI document says beyond the answer types beside each handler: the
//! shared error responses (each the envelope with its headers), the answer parts several
//! routes share, and the exact rules of request fields, taken from the domain's own lists.
//! `openapi.rs` assembles the document. A leaf: it names no handler.

use std::collections::BTreeMap;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, RefOr, Response, ResponseBuilder, Type, Type as SchemaType,
};

use utoipa::{IntoResponses, PartialSchema, ToResponse, ToSchema};

pub use crate::error::ErrorEnvelope;

/// The shared error answers, each the envelope with the headers that go with it.
macro_rules! error_response {
    ($name:ident, $description:literal $(, $header:literal => $header_doc:literal)*) => {
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                #[allow(unused_mut)]
                let mut response = ResponseBuilder::new().description($description).content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ErrorEnvelope::schema_ref()))
                        .build(),
                );
                $(
                    response = response.header(
                        $header,
                        HeaderBuilder::new()
                            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(SchemaType::String))
                            .description(Some($header_doc))
                            .build(),
                    );
                )*
                (stringify!($name), response.build().into())
            }
        }
    };
}

/// A reference to the envelope schema, for the shared responses.
trait SchemaRef {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::Ref::from_schema_name(T::name()).into()
    }
}

error_response!(
    BadRequest,
    "A query parameter or `X-Keyward-Required-…` header the operation doesn't know (named in \
     the sentence): a misspelt proxy setting fails closed"
);
error_response!(
    Unauthorized,
    "No valid token: missing, malformed, unknown, wrong, revoked or expired",
    "WWW-Authenticate" => "Basic realm=\"keyward\", charset=\"UTF-8\""
);
error_response!(
    Forbidden,
    "The token lacks a scope this request needs, or the account's API access is suspended"
);
error_response!(
    NotFound,
    "No such resource in the token's account (another account's is a 404 too)"
);
error_response!(MethodNotAllowed, "A method the path doesn't serve");
error_response!(
    Unprocessable,
    "The request can't be taken as it is: an `Accept` that refuses JSON, a body not labelled \
     `application/json`, a body that isn't valid JSON, or a field that is wrong (named in the \
     sentence)"
);
error_response!(
    TooManyRequests,
    "Too many requests: the token's own rate limit, or the address's",
    "Retry-After" => "Seconds to wait"
);
error_response!(
    Unavailable,
    "The server can't save changes right now (its storage is full or failing); nothing was changed",
    "Retry-After" => "Seconds to wait"
);

/// A page's place in a list, as Bonsai's client reads it.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    page_number: i64,
    page_size: i64,
    total_records: i64,
    total_pages: i64,
}

impl Pagination {
    pub fn of(paging: crate::domain::Paging, total_records: i64) -> Self {
        Self {
            page_number: paging.number(),
            page_size: paging.size(),
            total_records,
            total_pages: paging.pages_for(total_records),
        }
    }
}

/// A cluster's state, as the client spells it: the enum is the domain type's own list.
impl PartialSchema for crate::domain::ClusterState {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        one_of(crate::domain::ClusterState::ALL.iter().map(|s| s.as_str())).into()
    }
}

impl ToSchema for crate::domain::ClusterState {}

// What a request body may name, exactly as the server checks it, so a client (and a fuzzer
// such as Schemathesis) can tell a valid body from the document alone. The lists are the
// catalogue's and the domain's own, never copies.

/// A plan's slug, as `/plans` lists them.
pub fn plan_slug() -> Object {
    one_of(
        crate::plans::catalogue()
            .plans
            .iter()
            .map(|p| p.slug.as_str()),
    )
}

/// A space's path, as `/spaces` lists them.
pub fn space_path() -> Object {
    one_of(
        crate::plans::catalogue()
            .spaces
            .iter()
            .map(|s| s.path.as_str()),
    )
}

/// A release's slug, as `/releases` lists them.
pub fn release_slug() -> Object {
    one_of(
        crate::plans::catalogue()
            .releases
            .iter()
            .map(|r| r.slug.as_str()),
    )
}

/// A token's status, as the store names them.
pub fn token_status() -> Object {
    one_of(crate::db::tokens::Status::ALL.map(|s| s.as_str()))
}

/// A token's scopes: at least one, each a scope's name.
pub fn scope_list() -> Array {
    ArrayBuilder::new()
        .items(one_of(crate::domain::Scope::ALL.iter().map(|s| s.as_str())))
        .min_items(Some(1))
        .build()
}

/// `null`-able: absent leaves a field as it is, `null` clears it.
fn nullable(of: Type) -> utoipa::openapi::schema::SchemaType {
    utoipa::openapi::schema::SchemaType::from_iter([of, Type::Null])
}

pub fn permission_list() -> Array {
    ArrayBuilder::new()
        .schema_type(nullable(Type::Array))
        .items(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .pattern(Some("^[a-z][a-z0-9_.:-]{0,63}$")),
        )
        .max_items(Some(crate::domain::Permissions::MAX))
        .description(Some(
            "Permission names the account chooses, at most 50; null for none.",
        ))
        .build()
}

pub fn key_meta() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Object))
        .description(Some(
            "A JSON object of at most 4 KiB serialised, returned on verification and never used for decisions; null clears it.",
        ))
        .build()
}

pub fn external_id() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .min_length(Some(1))
        .max_length(Some(crate::domain::ExternalId::MAX_CHARS))
        .description(Some(
            "The customer this key belongs to in your own system: 1 to 128 printable characters; null clears it.",
        ))
        .build()
}

pub fn credits_input() -> Object {
    let amount = || {
        ObjectBuilder::new()
            .schema_type(SchemaType::Integer)
            .minimum(Some(0))
            .maximum(Some(crate::domain::MAX_CREDITS))
    };
    let refill = ObjectBuilder::new()
        .schema_type(nullable(Type::Object))
        .property(
            "interval",
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(["daily", "monthly"])),
        )
        .property("amount", amount())
        .required("interval")
        .required("amount")
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
    ObjectBuilder::new()
        .schema_type(nullable(Type::Object))
        .property("remaining", amount())
        .property("refill", refill)
        .required("remaining")
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        .description(Some(
            "Each successful API call or VALID verification spends one; at 0 the key is refused until a refill. null for no limit.",
        ))
        .build()
}

pub fn cidr_list() -> Array {
    ArrayBuilder::new()
        .schema_type(nullable(Type::Array))
        .items(ObjectBuilder::new().schema_type(SchemaType::String))
        .max_items(Some(crate::domain::IpAllowlist::MAX))
        .description(Some(
            "CIDRs (IPv4 or IPv6) the key may be used from, such as 203.0.113.0/24; empty or null for anywhere.",
        ))
        .build()
}

/// A name given by a person (a token's, a cluster's): trimmed, then 1 to
/// `NAME_MAX_CHARS` characters, with no control or invisible formatting characters.
pub fn human_name() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::String)
        .min_length(Some(1))
        .max_length(Some(crate::domain::NAME_MAX_CHARS))
        .description(Some(format!(
            "Trimmed, then 1 to {} characters, with no control characters and no invisible \
             formatting characters (Unicode category Cf).",
            crate::domain::NAME_MAX_CHARS
        )))
        .build()
}

fn one_of(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::String)
        .enum_values(Some(values))
        .build()
}

/// What the guard and the JSON check can answer on every guarded route, before its handler
/// has a say: 401, 403 (a suspended account, or a scope), 422 (`Accept` or body type) and
/// 429 (the token's rate limit). Each path lists it once, beside its own answers.
pub struct Guarded;

impl IntoResponses for Guarded {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("401".to_string(), named::<Unauthorized>()),
            ("403".to_string(), named::<Forbidden>()),
            ("422".to_string(), named::<Unprocessable>()),
            ("429".to_string(), named::<TooManyRequests>()),
        ])
    }
}

/// A reference to a shared response, by the name it is registered under.
fn named<'r, R: ToResponse<'r>>() -> RefOr<Response> {
    utoipa::openapi::Ref::from_response_name(R::response().0).into()
}
