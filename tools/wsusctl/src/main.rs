//! wsusctl: the management API from the command line (`WSUS_API_URL`, `WSUS_API_TOKEN`).

use clap::Parser;

mod cli;
mod commands;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // `wsusctl updates list | head`: end quietly when the reader goes, as command-line
    // tools do, instead of failing on the closed pipe (Rust ignores SIGPIPE by default).
    // SAFETY: restores the default action of a signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match commands::run(cli::Cli::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wsusctl: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
