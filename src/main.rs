use std::process::ExitCode;

use clap::Parser;
use inboxgrove::cli::{self, Cli, Command};
use inboxgrove::config::LogFormat;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Dovecot runs this for every IMAP login: answer before settings,
    // logging or the async runtime are set up, so it starts in a moment.
    if let Command::Checkpassword(args) = &cli.command {
        return ExitCode::from(cli::dovecot::checkpassword(args));
    }
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|e| {
        eprintln!(
            "warning: log filter {:?} is invalid ({e}); using info",
            settings.log
        );
        EnvFilter::new("info")
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
