//! wsus-bench: runs the benchmarks against the release binaries and prints the results
//! table (markdown). `scripts/bench` builds and runs it.

use clap::{Parser, Subcommand};

mod echo;
mod proc;
mod stats;
mod storm;

#[derive(Parser)]
#[command(name = "wsus-bench", about = "Benchmarks of the WSUS services on this machine")]
struct Cli {
    /// Simulated clients in the storm.
    #[arg(long, default_value_t = 2000)]
    clients: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Revisions of the generated catalog.
    #[arg(long, default_value_t = 25_000)]
    revisions: usize,
    /// Seconds each side of the echo comparison runs.
    #[arg(long, default_value_t = 10)]
    echo_seconds: u64,
    /// Record a perf profile of client-gateway answering the repeated SyncUpdates into this file.
    #[arg(long)]
    perf: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// (internal) the echo server of the limit benchmark.
    #[command(hide = true)]
    Echo {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        response: std::path::PathBuf,
        #[arg(long)]
        xpress: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(Command::Echo { port, response, xpress }) = cli.command {
        let answer = echo::Answer { body: std::fs::read(response)?, xpress };
        return runtime.block_on(echo::serve(port, answer));
    }
    // The services are the release binaries beside this one.
    if std::env::var_os("WSUS_BIN_DIR").is_none()
        && let Some(dir) = std::env::current_exe()?.parent()
    {
        // SAFETY: set before any other thread reads the environment.
        unsafe { std::env::set_var("WSUS_BIN_DIR", dir) };
    }
    let config = storm::StormConfig {
        clients: cli.clients,
        concurrency: cli.concurrency,
        revisions: cli.revisions,
        echo_seconds: cli.echo_seconds,
        perf: cli.perf,
    };
    let rows = runtime.block_on(storm::run(&config))?;
    println!("Machine: {} CPUs, {}", proc::cpus(), memory());
    println!();
    println!("| benchmark | measured | target | met |");
    println!("| --- | --- | --- | --- |");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!("| {} | {} | {} | {met} |", r.what, r.result, r.target);
    }
    Ok(())
}

fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| format!("{} GiB", kb / (1 << 20)))
        .unwrap_or_default()
}
