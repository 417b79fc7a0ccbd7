//! Prints `Authorization` header values, one a line, for credentials that look real but that
//! no database holds: a key of the published shape and a secret whose checksum is right, so
//! each gets past the parser and is refused only because the key is unknown. It is the flood
//! that `bench/guard.sh` sends.
//!
//!     cargo run --release --example bench_credentials -- 50000 > unknown.txt

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward::domain::{TokenKey, TokenSecret};

fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::args().nth(1) {
        Some(raw) => raw
            .parse()
            .with_context(|| format!("the count must be a whole number, not {raw:?}"))?,
        None => 10_000,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        let (key, secret) = (TokenKey::generate(), TokenSecret::generate());
        let credentials = format!("{key}:{}", secret.expose());
        writeln!(out, "Basic {}", STANDARD.encode(credentials))?;
    }
    out.flush()?;
    Ok(())
}
