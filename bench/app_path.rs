//! The API's own cost per request, in process: the real routes and guard over a temporary
//! SQLite store, called through actix's test service on one thread, with no socket, no
//! HTTP parsing and no load generator sharing the cores. `bench/guard.sh` measures the guard ratio
//! end to end, where the scheduler swings a run by more than the guard costs; this tells
//! what the guard itself adds to a request, steadily enough to compare two builds.
//!
//!   cargo run --release --example bench_app_path [REQUESTS]   # default 400,000 per route
//!
//! The routes: `/healthz` (unguarded); with a valid token, a guarded answer as small
//! (`/releases/{slug}`, as G3.2 takes), `/plans`, `/token` (a static path, its body built per
//! call), `/verify` (the guard alone) and `/plans/{slug}` (what a path parameter costs over
//! `/plans`); and `/plans` with a wrong secret (the 401 path). Each is called in batches of
//! REQUESTS / 40, the routes taking turns. The virtual machine this runs on changes speed from one second to
//! the next, so the fastest batch of each route (the least disturbed) is the figure to
//! compare, beside the median.
//!
//! `ONLY=valid` (or `healthz`, `wrong`, or a list such as `healthz,valid`) calls just those
//! routes, to profile one: `ONLY=valid perf record target/release/examples/bench_app_path`.

use std::io::Cursor;
use std::time::Instant;

use actix_web::http::header::AUTHORIZATION;
use actix_web::test::{TestRequest, call_service, init_service};
use actix_web::{App, web};
use base64::Engine;
use clap::Parser;

use keyward::cli::Cli;
use keyward::config::Config;
use keyward::state::AppState;

const BATCHES: usize = 40;
/// One release of the catalogue: an answer about as small as `/healthz`'s, as G3.2 takes.
const RELEASE: &str = "/releases/elasticsearch-2.4.0";
const PLAN: &str = "/plans/standard-nano-comped";

/// Runs a tool command against the store, as `keyward …` would, and returns its output.
fn command(database: &str, args: &[&str]) -> String {
    let mut argv = vec!["keyward", "--database-url", database];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    keyward::commands::execute(
        Cli::parse_from(argv),
        &mut Cursor::new(Vec::new()),
        &mut out,
    )
    .unwrap_or_else(|e| panic!("keyward {args:?}: {e:#}"));
    String::from_utf8(out).expect("the tool prints text")
}

/// The value after `label` in a tool's output. The output holds the token's secret, so a
/// missing line names the label only.
fn line<'a>(output: &'a str, label: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("the tool printed no `{label}` line"))
}

fn basic(key: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    format!("Basic {encoded}")
}

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(400_000);
    let per_batch = (requests / BATCHES).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = dir.path().join("bench.db");
    let database = database.to_str().expect("a UTF-8 path");

    let slug = command(database, &["account", "create", "--name", "Bench Inc"]);
    let created = command(
        database,
        &[
            "token",
            "create",
            "--account",
            slug.trim(),
            "--name",
            "bench",
        ],
    );
    let key = line(&created, "key: ");
    let valid = basic(key, line(&created, "secret: "));
    let wrong = basic(key, "kws_wrong");

    actix_web::rt::System::new().block_on(async move {
        let config = Config::for_database(database);
        let pool = keyward::db::connect_to(&config.database_url).expect("the store opens");
        let state = AppState::new(pool.clone(), config);
        let mut conn = pool.get().expect("a connection");
        state
            .cache
            .start(&mut conn)
            .expect("the cache loads the keys");
        drop(conn);
        let links = keyward::Links::new(None, "127.0.0.1:8080".parse().expect("an address"));
        let app = init_service(
            App::new()
                .app_data(web::Data::new(state))
                .app_data(web::Data::new(keyward::Catalogue::new(links)))
                .configure(keyward::configure_api),
        )
        .await;

        let routes: [(&str, &str, Option<&str>, u16); 7] = [
            ("GET /healthz (unguarded)", "/healthz", None, 200),
            (
                "GET /releases/{slug} (valid token)",
                RELEASE,
                Some(&valid),
                200,
            ),
            ("GET /plans (valid token)", "/plans", Some(&valid), 200),
            ("GET /plans (wrong secret)", "/plans", Some(&wrong), 401),
            ("GET /verify (valid token)", "/verify", Some(&valid), 204),
            ("GET /token (valid token)", "/token", Some(&valid), 200),
            ("GET /plans/{slug} (valid token)", PLAN, Some(&valid), 200),
        ];
        let only = std::env::var("ONLY").ok();
        let chosen = |name: &str| {
            only.as_deref()
                .is_none_or(|only| only.split(',').any(|word| name.contains(word)))
        };
        let mut batches: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
        // One unmeasured batch each first: the cache's first read, the allocator's warm-up.
        for round in 0..=BATCHES {
            for (i, (name, path, header, status)) in routes.iter().enumerate() {
                if !chosen(name) {
                    continue;
                }
                let started = Instant::now();
                for _ in 0..per_batch {
                    let mut request = TestRequest::get().uri(path);
                    if let Some(header) = header {
                        request = request.insert_header((AUTHORIZATION, *header));
                    }
                    let response = call_service(&app, request.to_request()).await;
                    assert_eq!(response.status().as_u16(), *status, "{name}");
                }
                if round > 0 {
                    batches[i].push(started.elapsed().as_nanos() as f64 / per_batch as f64);
                }
            }
        }
        println!("{per_batch} requests per batch, {BATCHES} batches per route; ns per request");
        let (mut medians, mut fastest) = (Vec::new(), Vec::new());
        for ((name, ..), mut times) in routes.iter().zip(batches) {
            if times.is_empty() {
                medians.push(f64::NAN);
                fastest.push(f64::NAN);
                continue;
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            medians.push(median);
            fastest.push(times[0]);
            println!(
                "{name:<28} median {median:7.0}   min {:7.0}   max {:7.0}",
                times[0],
                times[times.len() - 1]
            );
        }
        // Every route against the first, `/healthz`; a route left out by ONLY prints NaN.
        for (i, (name, ..)) in routes.iter().enumerate().skip(1) {
            println!(
                "{name} over /healthz: {:+.0} ns per request (fastest batches), {:+.0} (medians)",
                fastest[i] - fastest[0],
                medians[i] - medians[0]
            );
        }
    });
}
