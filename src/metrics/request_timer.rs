//! The request-latency histogram (`keyward_http_request_duration_seconds`): every answered
//! request is one sample, labelled by the route that answered it, its method and its
//! status class.
//!
//! The route label is the pattern Keyward registered for the route, as actix's public
//! `HttpRequest::match_pattern` gives it, or `unmatched`: one label per route Keyward
//! defines, never a label per path a client makes up.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use super::Metrics;

/// Seconds: from 0.5 ms (a cached guard decision plus a small handler) to 10 s (a
/// request that waited out the pool's checkout timeout).
pub(super) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A request no route matched: one label, whatever path was asked for.
pub const UNMATCHED: &str = "unmatched";

/// The method as a label; any other (extension methods are unbounded) is "other".
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn class_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The middleware: `.wrap(from_fn(time_request))`, with the server's `web::Data<Metrics>`.
pub async fn time_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let started = std::time::Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let request = response.request();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| UNMATCHED.to_string());
        metrics.request_took(
            route,
            method_label(request.method()),
            class_label(response.status()),
            started.elapsed(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse};

    use super::super::{REQUEST_DURATION, Snapshot};
    use super::*;

    #[actix_web::test]
    async fn each_request_is_labelled_with_its_routes_pattern_and_a_made_up_path_with_one_label() {
        let metrics = web::Data::new(Metrics::on(false));
        let ok = || async { HttpResponse::Ok().finish() };
        let app = init_service(
            App::new()
                .app_data(metrics.clone())
                .wrap(from_fn(time_request))
                .service(web::resource(r"/a/{id:\d+}").to(ok))
                .service(web::resource("/a/{id}").to(ok))
                .service(
                    web::scope("/s/{tenant}")
                        .service(web::resource("/x").to(ok))
                        .service(web::resource("/{item}").to(ok)),
                )
                .service(web::resource("/plain").to(ok)),
        )
        .await;
        let paths = [
            ("/a/1", r"/a/{id:\d+}"),
            ("/a/b", "/a/{id}"),
            ("/a/22", r"/a/{id:\d+}"),
            ("/s/t1/x", "/s/{tenant}/x"),
            ("/s/t2/z", "/s/{tenant}/{item}"),
            ("/plain", "/plain"),
            ("/nowhere-4711", UNMATCHED),
            ("/elsewhere-4712", UNMATCHED),
        ];
        let mut expected: HashMap<String, f64> = HashMap::new();
        for (path, route) in paths {
            let response = call_service(&app, TestRequest::get().uri(path).to_request()).await;
            let class = class_label(response.status());
            *expected.entry(format!("{route} {class}")).or_default() += 1.0;
        }

        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        let head = format!("{REQUEST_DURATION}_count{{");
        let counted: HashMap<String, f64> = page
            .lines()
            .filter_map(|line| line.strip_prefix(head.as_str()))
            .filter_map(|rest| {
                let (labels, count) = rest.split_once("} ")?;
                let label = |name: &str| {
                    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
                    let end = labels[start..].find('"')? + start;
                    Some(labels[start..end].replace(r"\\", r"\"))
                };
                assert_eq!(label("method")?, "GET");
                Some((
                    format!("{} {}", label("route")?, label("status")?),
                    count.parse().ok()?,
                ))
            })
            .collect();
        assert_eq!(counted, expected, "{page}");
    }
}
