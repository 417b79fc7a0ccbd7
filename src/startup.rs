//! Builds the server: pool and migrations, shared state, routes, background loops.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::config::Config;
use crate::state::AppState;
use crate::{background, db, routes, telemetry};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the database, binds the address (port 0 picks a free one) and starts serving.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let database_url = config.database_url.clone();
        let pool = tokio::task::spawn_blocking(move || db::connect(&database_url))
            .await
            .context("database setup task failed")??;
        let seen = {
            let mut conn = pool.get()?;
            db::invalidations::latest_seq(&mut conn).map_err(|e| anyhow::anyhow!("{e}"))?
        };

        let listener = TcpListener::bind(config.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let port = listener.local_addr()?.port();
        let workers = config.workers;

        // Built once: every worker gets a handle to the same cache and recorder.
        let state = web::Data::new(AppState::new(pool, config));
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(telemetry::log_request))
                .configure(routes::api::configure)
                .default_service(web::to(routes::not_found))
        })
        .listen(listener)?;
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.run();
        background::spawn(state.clone(), Arc::new(AtomicI32::new(seen)));
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
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
        let result = self.server.await;
        let state = self.state.clone();
        match tokio::task::spawn_blocking(move || state.usage.flush(&state.pool)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "could not record token use at shutdown"),
            Err(err) => tracing::warn!(error = %err, "shutdown flush failed"),
        }
        result
    }
}
