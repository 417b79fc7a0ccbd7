//! `keyward`: serve the dashboard and API, or run an operator's command.

use clap::Parser;
use keyward::cli::{Cli, Command};
use keyward::config::Config;
use keyward::domain::SignupMode;
use keyward::startup::Application;

fn main() {
    let cli = Cli::parse();
    keyward::telemetry::init();
    let result = match cli.command {
        None | Some(Command::Serve) => serve(cli),
        Some(_) => {
            let stdin = std::io::stdin();
            keyward::commands::execute(cli, &mut stdin.lock(), &mut std::io::stdout())
        }
    };
    if let Err(err) = result {
        // One line, no backtrace: the message says what to fix.
        let message = format!("{err:#}").replace('\n', " ");
        eprintln!("keyward: {message}");
        std::process::exit(1);
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let config = Config::try_from(cli.settings).map_err(|e| anyhow::anyhow!(e))?;
    return_large_allocations();
    let served = actix_web::rt::System::new().block_on(async move {
        let bind = config.bind;
        let signup = config.signup;
        let unset_support = (!config.support_email_was_set).then(|| config.support_email.clone());
        let app = Application::build(config).await?;
        if let Some(address) = unset_support {
            tracing::warn!("KEYWARD_SUPPORT_EMAIL is not set; 401 bodies will name {address}");
        }
        let url = format!("http://{}:{}", bind.ip(), app.port());
        match signup {
            SignupMode::Open => println!("Keyward is listening on {url} — sign up at {url}/signup"),
            SignupMode::InviteOnly => println!(
                "Keyward is listening on {url} — sign-up is by invitation only; create accounts with `keyward account create`"
            ),
            SignupMode::Closed => println!(
                "Keyward is listening on {url} — sign-up is closed; create accounts with `keyward account create`"
            ),
        }
        app.run_until_stopped().await.map_err(anyhow::Error::from)
    });
    // The server and its pool are gone (or never started); a connection r2d2 was still
    // opening must not be inside libpq when the process exits.
    if !keyward::db::finish_connecting(std::time::Duration::from_secs(15)) {
        tracing::warn!("a database connection was still opening at exit");
    }
    served
}

/// Makes glibc's malloc serve every block of 1 MiB or more with its own mapping, and
/// unmap it when freed.
///
/// Each argon2 hash allocates 19 MiB and frees it. By default glibc raises its mapping
/// threshold past a block of that size once the first one is freed; after that the
/// blocks come from the per-thread arenas, which keep them. Threads switch arenas when
/// one is busy, so one argon2 thread's blocks end up kept in several: in
/// `bench/password_flood.sh` six arenas held 57 MiB each, and the server's peak resident
/// memory was 327 MiB. A fixed threshold (which also stops glibc moving it) gives the
/// memory back after each hash: the same flood peaks at about 60 MiB. (mimalloc, tried
/// instead, peaked at 175 MiB and idles at twice the memory.)
fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning; it is called before any thread
        // but this one has started.
        if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) } != 1 {
            tracing::warn!("could not set malloc's mapping threshold");
        }
    }
}
