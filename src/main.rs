//! `keyward`: serve the dashboard and API, or run an operator's command.

use clap::Parser;
use keyward::cli::{Cli, Command};
use keyward::config::Config;
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
    actix_web::rt::System::new().block_on(async move {
        let bind = config.bind;
        let unset_support = (!config.support_email_was_set).then(|| config.support_email.clone());
        let app = Application::build(config).await?;
        if let Some(address) = unset_support {
            tracing::warn!("KEYWARD_SUPPORT_EMAIL is not set; 401 bodies will name {address}");
        }
        let url = format!("http://{}:{}", bind.ip(), app.port());
        println!("Keyward is listening on {url} — sign up at {url}/signup");
        app.run_until_stopped().await?;
        Ok(())
    })
}
