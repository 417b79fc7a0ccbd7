//! Builds the server: pool and migrations, shared state, routes, background loops.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time::Duration};
use actix_web::middleware::{Condition, DefaultHeaders};

use crate::auth::csrf::{self, AnonymousCsrf};
use crate::auth::session::{self, DbSessionStore};
use crate::config::Config;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::{background, db, routes, telemetry};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// `GET /metrics` on its own address, when `KEYWARD_METRICS_BIND` is set.
    metrics: Option<(u16, Server)>,
}

impl Application {
    /// Opens the database, binds the address (port 0 picks a free one) and starts serving.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if let Some(catalogue) = config.catalogue {
            crate::plans::install(catalogue).map_err(|e| anyhow::anyhow!(e))?;
        }
        let metrics = Arc::new(match config.metrics_bind {
            Some(_) => Metrics::on(config.metrics_per_account),
            None => Metrics::off(),
        });
        // Bound before the database is opened: a taken metrics address fails the start
        // at once, not after the migrations.
        let metrics_listener = config
            .metrics_bind
            .map(|address| {
                TcpListener::bind(address)
                    .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {address}: {e}"))
            })
            .transpose()?;
        let database_url = config.database_url.clone();
        let events = metrics.pool_events();
        let pool = tokio::task::spawn_blocking(move || db::connect_watched(&database_url, events))
            .await
            .context("database setup task failed")??;

        let https = config.is_https();
        let key_material =
            session_key_material(&pool, config.session_key.as_ref().map(|k| k.expose()))?;
        let session_key = Key::derive_from(key_material.as_bytes());
        let anonymous_csrf = web::Data::new(AnonymousCsrf::new(key_material.as_bytes(), https));
        drop(key_material);

        let listener = TcpListener::bind(config.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let port = listener.local_addr()?.port();
        // After the bind: a start that fails for its address makes no key file.
        let secret_key = crate::auth::secret_key::KeySource::of(
            config.secret_key.as_ref().map(|k| k.expose()),
            config.secret_key_file.as_deref(),
            &config.database_url,
        )
        .load()?;
        if secret_key.is_none() {
            tracing::warn!(
                "two-factor sign-in is off: set KEYWARD_SECRET_KEY or KEYWARD_SECRET_KEY_FILE to turn it on"
            );
        }
        let workers = config.workers;
        // The API's links, for the address clients use.
        let links = routes::api::Links::new(config.public_url.as_deref(), listener.local_addr()?);

        let mailer = config
            .mail
            .as_ref()
            .map(|mail| crate::mail::Mailer::new(mail, &public_base(&config, &listener)?))
            .transpose()?;
        if let Some(mailer) = &mailer {
            tracing::info!(relay = mailer.relay(), "mail is on");
        }
        let oidc = match config.oidc.clone() {
            Some(settings) => Some(oidc_client(settings).await?),
            None => None,
        };
        // Built once: every worker gets a handle to the same cache and recorder.
        let state = web::Data::new(
            AppState::new(pool, config)
                .with_metrics(metrics.clone())
                .with_mailer(mailer)
                .with_secret_key(secret_key)
                .with_oidc(oidc),
        );
        let starting = state.clone();
        let loading = std::time::Instant::now();
        let keys = tokio::task::spawn_blocking(move || {
            let mut conn = starting.pool.get()?;
            starting.cache.start(&mut conn).map_err(anyhow::Error::from)
        })
        .await
        .context("token key loading task failed")?
        .context("cannot load the token keys")?;
        tracing::info!(
            keys,
            ms = loading.elapsed().as_millis() as u64,
            "token keys loaded"
        );
        let app_state = state.clone();
        let config = web::Data::from(state.config.clone());
        let store = DbSessionStore::new(state.pool.clone());
        let database_url = state.config.database_url.clone();
        let timed = metrics.enabled();
        let mut server = HttpServer::new(move || {
            App::new()
                // Outermost, so the time includes the guard and every other middleware.
                .wrap(Condition::new(timed, from_fn(crate::metrics::time_request)))
                .app_data(web::Data::from(metrics.clone()))
                .app_data(app_state.clone())
                // The settings on their own, for `auth`, which knows nothing of `AppState`.
                .app_data(config.clone())
                // Made here, so each worker has its own (see `db::reader`).
                .app_data(web::Data::new(db::reader::WorkerReader::new(&database_url)))
                // Rendered per worker: every catalogue answer clones its bytes, and a
                // reference count that two workers write moves between cores each time.
                .app_data(web::Data::new(routes::api::Catalogue::new(links.clone())))
                .wrap(security_headers())
                .wrap(from_fn(telemetry::log_request))
                .configure(routes::api::configure)
                .service(
                    // The dashboard, and only the dashboard, reads the session cookie.
                    web::scope("")
                        .app_data(anonymous_csrf.clone())
                        .wrap(from_fn(csrf::set_issued_cookie))
                        .wrap(session_middleware(
                            store.clone(),
                            session_key.clone(),
                            https,
                        ))
                        .configure(routes::dashboard::configure)
                        .default_service(web::to(routes::not_found)),
                )
        })
        .listen(listener)?;
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.run();
        let metrics = metrics_listener
            .map(|listener| metrics_server(listener, state.clone()))
            .transpose()?;
        background::spawn(state.clone());
        Ok(Self {
            port,
            server,
            state,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `GET /metrics` is served on; `None` when metrics are off.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// A handle for stopping the server from elsewhere, as tests do.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped (Ctrl-C or SIGTERM), then writes the last `last_used` figures.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // The metrics listener lives and ends with the API's server.
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, serving)) = metrics {
            handle.stop(true).await;
            drop(serving.await);
        }
        let state = self.state.clone();
        let flushed = move || {
            let spent = state.credits.flush(&state.pool).map(drop);
            state.usage.flush(&state.pool).and(spent)
        };
        match tokio::task::spawn_blocking(flushed).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "could not record token use at shutdown"),
            Err(err) => tracing::warn!(error = %err, "shutdown flush failed"),
        }
        result
    }
}

/// `GET /metrics` and nothing else, on the metrics address: one worker, in the same
/// runtime as the API. It stops with the API's server, not on a signal of its own.
fn metrics_server(
    listener: TcpListener,
    state: web::Data<AppState>,
) -> anyhow::Result<(u16, Server)> {
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(AppError::NotFound)
            }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// The Prometheus text page. On the metrics server's own worker: rendering never holds
/// up an API worker.
async fn scrape(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let page = state
        .metrics
        .render(state.metrics_snapshot())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(page))
}

/// The SSO client, with the provider's metadata fetched once: a provider that doesn't
/// answer now is a warning, and is asked again at the first sign-in.
async fn oidc_client(
    settings: crate::config::OidcSettings,
) -> anyhow::Result<crate::auth::oidc::Oidc> {
    let oidc = crate::auth::oidc::Oidc::new(settings)?;
    match oidc.discover().await {
        Ok(()) => tracing::info!(issuer = oidc.issuer(), "single sign-on is on"),
        Err(err) => tracing::warn!(
            issuer = oidc.issuer(),
            error = %err,
            "single sign-on: the provider did not answer; it is asked again at the first sign-in"
        ),
    }
    Ok(oidc)
}

/// The address mailed links point at: the public URL, else the address listened on.
fn public_base(config: &Config, listener: &TcpListener) -> anyhow::Result<String> {
    Ok(match &config.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", listener.local_addr()?),
    })
}

/// What the cookie-signing keys are derived from: the configured session key, else one
/// generated and kept in the database so sessions survive a restart.
fn session_key_material(pool: &db::Pool, configured: Option<&str>) -> anyhow::Result<String> {
    Ok(match configured {
        Some(key) => key.to_string(),
        None => {
            let mut conn = pool.get()?;
            db::server_settings::get_or_init(&mut conn, "session_key", || {
                crate::domain::random_base62(86)
            })
            .map_err(|e| anyhow::anyhow!("cannot store the session key: {e}"))?
        }
    })
}

fn session_middleware(
    store: DbSessionStore,
    key: Key,
    https: bool,
) -> SessionMiddleware<DbSessionStore> {
    SessionMiddleware::builder(store, key)
        .cookie_name(session::cookie_name(https).to_string())
        .cookie_secure(https)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_string())
        .cookie_content_security(CookieContentSecurity::Signed)
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(Duration::hours(session::IDLE_TIMEOUT_HOURS))
                .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
        )
        .build()
}

/// Sent with every response. The policy allows no inline script and no framing.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Content-Type-Options", "nosniff"))
}
