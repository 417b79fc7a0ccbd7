//! Logging: one line per request with method, path, status and time. Never the query
//! string or any header, so credentials can't reach the log.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("KEYWARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The path as it may be logged. An invitation link's last segment is a one-time
/// secret, so it is replaced.
pub fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/invitations/") {
        Some(rest) if !rest.is_empty() => "/invitations/<redacted>".to_string(),
        _ => path.to_string(),
    }
}

pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = loggable_path(req.path());
    let response = next.call(req).await?;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = %format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn invitation_links_are_redacted_and_other_paths_kept() {
        assert_eq!(
            loggable_path("/invitations/abc123"),
            "/invitations/<redacted>"
        );
        assert_eq!(loggable_path("/tokens/7"), "/tokens/7");
        assert_eq!(loggable_path("/clusters/"), "/clusters/");
    }
}
