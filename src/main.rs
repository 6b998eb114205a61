use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use recflow::cli::{Cli, LogFormat};
use recflow::errln;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // A closed stdout (`recflow runs list | head`) is not a failure: the
    // command ends with its own status, 0 for a listing (`recflow::out`).
    // Any other write error on stdout fails the command.
    match runtime.block_on(recflow::cli::run(cli)) {
        Ok(code) => match recflow::out::failure() {
            None => ExitCode::from(code as u8),
            Some(e) => {
                errln!("Error: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            errln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr, the command's own output (step lines, tables) to
/// stdout. On a terminal only warnings show by default (the command's
/// output is the report); elsewhere info events are logged. Access logs,
/// which `recflow serve --access-log` turns on, show either way. `RUST_LOG`
/// overrides all of it.
fn init_logging(format: LogFormat) {
    let default = if std::io::stderr().is_terminal() {
        "warn"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},sqlx=warn,recflow::access=info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
