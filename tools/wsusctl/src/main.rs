//! wsusctl: the management API from the command line (`WSUS_API_URL`, `WSUS_API_TOKEN`).

use clap::Parser;

mod cli;
mod commands;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match commands::run(cli::Cli::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wsusctl: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
