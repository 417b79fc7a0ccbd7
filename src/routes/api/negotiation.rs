//! The API speaks JSON and nothing else. A client must accept a JSON answer, and a body
//! must be labelled `application/json`; anything else is a 422 whose sentence names the
//! header, as Bonsai answers. A form or text body is refused even when it holds valid JSON:
//! a cross-site form can send those, riding on Basic credentials a browser has cached.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, Quality, QualityItem,
    TRANSFER_ENCODING,
};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::mime::{self, Mime};
use actix_web::{Error, ResponseError};

use crate::error::AppError;

const NOT_ACCEPTABLE: &str =
    "The Accept header specifies a response format other than application/json.";

const TOO_LARGE: &str = "The request body is larger than this API accepts.";

/// The most of a header value a 422 repeats back.
const SHOWN_CHARS: usize = 100;

/// actix middleware: `.wrap(from_fn(negotiation::json_only))`, inside the guard, so that a
/// caller without a token learns nothing but the 401.
pub async fn json_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let mut errors = Vec::new();
    if !accepts_json(req.headers()) {
        errors.push(NOT_ACCEPTABLE.to_string());
    }
    if let Some(problem) = body_type_problem(req.method(), req.headers()) {
        errors.push(problem);
    }
    if errors.is_empty() {
        let answered = next.call(req).await?;
        // actix answers a body over its extractor's limit in plain text; the API answers
        // in its envelope.
        if answered.status() == StatusCode::PAYLOAD_TOO_LARGE
            && !answered.headers().get(CONTENT_TYPE).is_some_and(is_json)
        {
            let (req, _) = answered.into_parts();
            let response = AppError::TooLarge(TOO_LARGE.into()).error_response();
            return Ok(ServiceResponse::new(req, response).map_into_right_body());
        }
        Ok(answered.map_into_left_body())
    } else {
        let response = AppError::Invalid(errors).error_response();
        Ok(req.into_response(response).map_into_right_body())
    }
}

/// No `Accept` (or an empty one) accepts anything. Otherwise one of its ranges must cover
/// `application/json` with a quality above zero; a value that can't be read covers nothing.
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut ranges = Vec::new();
    for value in headers.get_all(ACCEPT) {
        let Ok(text) = value.to_str() else {
            return false;
        };
        ranges.extend(text.split(',').map(str::trim).filter(|r| !r.is_empty()));
    }
    ranges.is_empty()
        || ranges.into_iter().any(|range| {
            range
                .parse::<QualityItem<Mime>>()
                .is_ok_and(|range| range.quality > Quality::ZERO && covers_json(&range.item))
        })
}

fn covers_json(range: &Mime) -> bool {
    match (range.type_(), range.subtype()) {
        (mime::STAR, mime::STAR) => true,
        (mime::APPLICATION, mime::STAR) => true,
        (mime::APPLICATION, mime::JSON) => range.suffix().is_none(),
        _ => false,
    }
}

/// Why the request's body can't be read as JSON, if it can't. Only requests that carry a
/// body, or whose method is meant to, are asked for a Content-Type.
fn body_type_problem(method: &Method, headers: &HeaderMap) -> Option<String> {
    let has_content = has_content(headers);
    if !has_content && !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return None;
    }
    match headers.get(CONTENT_TYPE) {
        None if has_content => Some(
            "The Content-Type header is missing; send the body as application/json.".to_string(),
        ),
        None => None,
        Some(value) if is_json(value) => None,
        Some(value) => Some(format!(
            "The Content-Type header specifies {}.",
            shown(value)
        )),
    }
}

/// Whether the request says it has a body at all; an empty POST is left to the handler,
/// which says what it expected.
fn has_content(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

fn is_json(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION && m.subtype() == mime::JSON && m.suffix().is_none()
        })
}

/// The media type a header names, for the sentence: `text/plain` for
/// `text/plain; charset=utf-8`, the value itself (cut short) when it isn't a media type.
fn shown(value: &HeaderValue) -> String {
    let Ok(text) = value.to_str() else {
        return "a value that is not text".to_string();
    };
    match text.parse::<Mime>() {
        Ok(media) => media.essence_str().to_string(),
        Err(_) => {
            let text = text.trim();
            let mut cut: String = text.chars().take(SHOWN_CHARS).collect();
            if cut.len() < text.len() {
                cut.push('…');
            }
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(actix_web::http::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        map
    }

    #[test]
    fn accept_ranges_that_cover_json() {
        for accept in [
            "*/*",
            "application/*",
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "text/html, application/xhtml+xml, */*;q=0.8",
            "text/plain;q=1, application/json;q=0.1",
            "",
        ] {
            assert!(accepts_json(&headers(&[(ACCEPT, accept)])), "{accept:?}");
        }
        assert!(accepts_json(&HeaderMap::new()), "no Accept at all");
    }

    #[test]
    fn accept_ranges_that_do_not() {
        for accept in [
            "text/html",
            "application/xml",
            "application/json;q=0",
            "*/*;q=0",
            "application/problem+json",
            "text/*",
            "not a media type",
        ] {
            assert!(!accepts_json(&headers(&[(ACCEPT, accept)])), "{accept:?}");
        }
    }

    #[test]
    fn a_body_needs_a_json_content_type() {
        let post = |pairs: &[(actix_web::http::header::HeaderName, &str)]| {
            body_type_problem(&Method::POST, &headers(pairs))
        };
        assert_eq!(post(&[(CONTENT_TYPE, "application/json")]), None);
        assert_eq!(
            post(&[(CONTENT_TYPE, "application/json; charset=utf-8")]),
            None
        );
        assert_eq!(
            post(&[(CONTENT_TYPE, "application/xml")]).as_deref(),
            Some("The Content-Type header specifies application/xml.")
        );
        assert_eq!(
            post(&[(CONTENT_TYPE, "text/plain; charset=utf-8")]).as_deref(),
            Some("The Content-Type header specifies text/plain.")
        );
        assert!(
            post(&[(CONTENT_LENGTH, "2")])
                .is_some_and(|p| p.contains("Content-Type header is missing"))
        );
        assert_eq!(post(&[(CONTENT_LENGTH, "0")]), None, "an empty POST");
        // A GET with no body is not asked for a Content-Type.
        assert_eq!(
            body_type_problem(&Method::GET, &headers(&[(CONTENT_TYPE, "text/plain")])),
            None
        );
    }

    #[test]
    fn a_long_unreadable_content_type_is_cut_short() {
        let long = "x".repeat(500);
        let problem =
            body_type_problem(&Method::PUT, &headers(&[(CONTENT_TYPE, &long)])).expect("refused");
        assert!(problem.len() < 200, "{problem}");
    }
}
