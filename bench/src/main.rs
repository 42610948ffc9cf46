//! wsus-bench: runs the benchmarks against the release binaries and prints the results
//! table (markdown). `scripts/bench` builds and runs it.

use clap::{Parser, Subcommand, ValueEnum};

mod console;
mod content;
mod copy;
mod echo;
mod import;
mod ingest;
mod memory;
mod overload;
mod proc;
mod servers;
mod stats;
mod storm;
mod table;

/// The benchmarks, in the order they run: those that write gigabytes last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Bench {
    Storm,
    Overload,
    Console,
    Ingest,
    Content,
    Memory,
    Import,
}

#[derive(Parser)]
#[command(name = "wsus-bench", about = "Benchmarks of the WSUS services on this machine")]
pub struct Cli {
    /// Which benchmarks to run (all when not given).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Bench>,
    /// Simulated clients in the storm.
    #[arg(long, default_value_t = 2000)]
    pub clients: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Revisions of the generated catalog.
    #[arg(long, default_value_t = 25_000)]
    pub revisions: usize,
    /// Seconds each side of the echo comparison runs.
    #[arg(long, default_value_t = 10)]
    pub echo_seconds: u64,
    /// Record a perf profile of client-gateway answering the repeated SyncUpdates into this file.
    #[arg(long)]
    pub perf: Option<std::path::PathBuf>,
    /// Computers of the console benchmark's estate.
    #[arg(long, default_value_t = 150_000)]
    pub console_computers: usize,
    /// Revisions of the overload benchmark's catalog.
    #[arg(long, default_value_t = 2000)]
    pub overload_revisions: usize,
    /// Seconds each phase of the overload benchmark (closed loop, then twice its rate) runs.
    #[arg(long, default_value_t = 10)]
    pub overload_seconds: u64,
    /// Revisions of the catalog the memory benchmark loads.
    #[arg(long, default_value_t = 150_000)]
    pub memory_revisions: usize,
    /// Revisions of the memory benchmark's Windows-sized profile.
    #[arg(long, default_value_t = 8000)]
    pub memory_windows_revisions: usize,
    /// Revisions of the storm's second run, with Windows-sized Core fragments (0: no second run).
    #[arg(long, default_value_t = 8000)]
    pub storm_windows_revisions: usize,
    /// The fragment cache's bound in that run, in MiB.
    #[arg(long, default_value_t = 256)]
    pub storm_windows_cache_mib: u64,
    /// Core fragment of each leaf update in the Windows-sized profile, in KiB.
    #[arg(long, default_value_t = 225)]
    pub core_kib: usize,
    /// Catalog sizes the sync import benchmark syncs (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "25000,150000")]
    pub import_revisions: Vec<usize>,
    /// Events the ingestion benchmark sends.
    #[arg(long, default_value_t = 400_000)]
    pub events: usize,
    /// Size of the file the content benchmark serves, in MiB.
    #[arg(long, default_value_t = 256)]
    pub content_mib: usize,
    /// Seconds each side of the content comparison runs.
    #[arg(long, default_value_t = 10)]
    pub content_seconds: u64,
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
    let mut rows = Vec::new();
    for bench in Bench::value_variants() {
        if !cli.only.is_empty() && !cli.only.contains(bench) {
            continue;
        }
        // What the last benchmark wrote is on disk before the next starts: the durable
        // ones time their flushes.
        let _ = std::process::Command::new("sync").status();
        // A benchmark pins the load generator to a core, and processes started later
        // would inherit it.
        proc::unpin(std::process::id());
        rows.extend(match bench {
            Bench::Storm => {
                let mut cfg = storm::StormConfig {
                    clients: cli.clients,
                    concurrency: cli.concurrency,
                    revisions: cli.revisions,
                    echo_seconds: cli.echo_seconds,
                    perf: cli.perf.clone(),
                    windows_sized: None,
                };
                let mut rows = runtime.block_on(storm::run(&cfg))?;
                if cli.storm_windows_revisions > 0 {
                    cfg.revisions = cli.storm_windows_revisions;
                    cfg.windows_sized = Some((cli.core_kib, cli.storm_windows_cache_mib << 20));
                    cfg.perf = None;
                    rows.extend(runtime.block_on(storm::run(&cfg))?);
                }
                rows
            }
            Bench::Overload => runtime.block_on(overload::run(&cli))?,
            Bench::Console => runtime.block_on(console::run(&cli))?,
            Bench::Ingest => runtime.block_on(ingest::run(&cli))?,
            Bench::Content => runtime.block_on(content::run(&cli))?,
            Bench::Memory => runtime.block_on(memory::run(&cli))?,
            Bench::Import => runtime.block_on(import::run(&cli))?,
        });
    }
    println!("Machine: {} CPUs, {}", proc::cpus(), memory());
    println!();
    table::print(&rows);
    Ok(())
}

fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| format!("{} GiB", kb / (1 << 20)))
        .unwrap_or_default()
}
