//! The flood half of `bench/password_flood.sh`: waves of concurrent anonymous sign-ups and
//! sign-ins against a Keyward server, each client from its own loopback address. One
//! process with async clients, so the flood itself costs the shared cores little.
//!
//! `password_flood URL CLIENTS SECONDS WAVES SEEDED_USERS`
//!
//! Each wave, every client fetches its form with a cookie jar (for the CSRF token), then
//! all post at once: even clients sign up with a new email, odd ones sign in with a wrong
//! password, for an existing user (`userN@bench.test`) or an unknown email. Bounded by
//! WAVES and SECONDS, whichever ends first. Prints how many answers had each status.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;

const PASSWORD: &str = "bench password 0123456789";

struct Client {
    http: reqwest::Client,
    wave: usize,
    index: usize,
}

impl Client {
    /// A client of its own loopback address, such as 127.10.0.1, and its own cookie jar.
    fn new(wave: usize, index: usize) -> reqwest::Result<Self> {
        // WAVES <= 50 and CLIENTS <= 1000 keep every octet in range and every address distinct.
        let octet = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
        let source = Ipv4Addr::new(
            127,
            octet(10 + wave),
            octet(index / 250),
            octet(index % 250 + 1),
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(IpAddr::V4(source))
            .cookie_provider(Arc::new(Jar::default()))
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { http, wave, index })
    }

    fn form(&self) -> &'static str {
        if self.index.is_multiple_of(2) {
            "/signup"
        } else {
            "/login"
        }
    }

    /// Fetches the form and returns its CSRF token.
    async fn prepare(&self, url: &str) -> Option<String> {
        let page = self
            .http
            .get(format!("{url}{}", self.form()))
            .send()
            .await
            .ok()?;
        let body = page.text().await.ok()?;
        let marker = "name=\"csrf_token\" value=\"";
        let start = body.find(marker)? + marker.len();
        let end = start + body[start..].find('"')?;
        Some(body[start..end].to_string())
    }

    /// Posts the form; returns the status, or 0 when no answer came.
    async fn post(&self, url: &str, csrf: &str, seeded: usize) -> u16 {
        let (wave, i) = (self.wave, self.index);
        let mut fields = vec![("csrf_token".to_string(), csrf.to_string())];
        if self.form() == "/signup" {
            fields.extend([
                ("account_name".into(), format!("Flood {wave} {i}")),
                ("email".into(), format!("flood.{wave}.{i}@bench.test")),
                ("password".into(), PASSWORD.into()),
                ("password_confirmation".into(), PASSWORD.into()),
            ]);
        } else {
            let email = if i % 4 == 1 && seeded > 0 {
                format!("user{}@bench.test", i % seeded + 1)
            } else {
                format!("nobody.{wave}.{i}@bench.test")
            };
            fields.extend([
                ("email".into(), email),
                ("password".into(), format!("wrong {wave} {i}")),
            ]);
        }
        match self
            .http
            .post(format!("{url}{}", self.form()))
            .form(&fields)
            .send()
            .await
        {
            Ok(answer) => answer.status().as_u16(),
            Err(_) => 0,
        }
    }
}

fn arg(args: &[String], i: usize, name: &str) -> Result<usize, String> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{name} must be a number"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .filter(|u| u.starts_with("http://127."))
        .ok_or("usage: password_flood http://127.0.0.1:PORT CLIENTS SECONDS WAVES SEEDED_USERS")?
        .trim_end_matches('/')
        .to_string();
    let clients = arg(&args, 2, "CLIENTS")?.min(1000);
    let seconds = arg(&args, 3, "SECONDS")?.min(60);
    let waves = arg(&args, 4, "WAVES")?.min(50);
    let seeded = arg(&args, 5, "SEEDED_USERS")?;

    let end = Instant::now() + Duration::from_secs(seconds as u64);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut done = 0;
    while done < waves && Instant::now() < end {
        let wave: Vec<Client> = (0..clients)
            .map(|i| Client::new(done, i))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("client: {e}"))?;
        let tokens = join_all(wave.iter().map(|c| c.prepare(&url))).await;
        let posts = wave.iter().zip(&tokens).map(|(client, csrf)| {
            let url = &url;
            async move {
                match csrf {
                    Some(csrf) => client.post(url, csrf, seeded).await,
                    None => 0,
                }
            }
        });
        for status in join_all(posts).await {
            *statuses.entry(status).or_default() += 1;
        }
        done += 1;
    }
    let total: usize = statuses.values().sum();
    println!("flood: {done} waves, {total} posts; answers (count status, 0 = no answer):");
    for (status, count) in statuses {
        println!("   {count:>6} {status}");
    }
    Ok(())
}
