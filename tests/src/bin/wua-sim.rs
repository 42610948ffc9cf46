//! `wua-sim`: simulated Windows Update Agents against a server — each does the handshake,
//! a full scan, GetExtendedUpdateInfo for its leaves, and reports — and a summary.
//!
//! wua-sim --server http://127.0.0.1:8530 [--clients 10] [--rounds 1] [--download]

use std::time::{Duration, Instant};

use clap::Parser;
use wsus_e2e::agent::Agent;

#[derive(Parser)]
struct Args {
    /// The server clients are pointed at (the WUServer policy).
    #[arg(long, default_value = "http://127.0.0.1:8530")]
    server: String,
    /// Simulated clients, running at once.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Scans per client (the first is full, the next ones rescans with a warm cache).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Also download every file of what is offered for install (checked against its
    /// digests), from wherever the server's file locations point.
    #[arg(long)]
    download: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let server = args.server.clone();
        let (rounds, download) = (args.rounds, args.download);
        tasks.push(tokio::spawn(async move {
            let mut agent = Agent::new(&server);
            agent.handshake(true).await?;
            let mut pages = 0;
            let mut scan_time = Duration::ZERO;
            for _ in 0..rounds {
                let t = Instant::now();
                pages += agent.scan().await?.pages;
                scan_time += t.elapsed();
            }
            agent.fetch_extended_info().await?;
            let files =
                if download { agent.download_offered(1 << 20).await.map_err(anyhow::Error::msg)? } else { (0, 0) };
            agent.report_scan_and_installs(&[], &[]).await?;
            Ok::<_, anyhow::Error>((pages, scan_time, agent.received.len(), files))
        }));
    }
    let (mut ok, mut failed, mut pages, mut scan_time, mut updates) = (0, 0, 0, Duration::ZERO, 0);
    let (mut files, mut bytes) = (0, 0);
    for t in tasks {
        match t.await? {
            Ok((p, s, u, (f, b))) => {
                ok += 1;
                pages += p;
                scan_time += s;
                updates = updates.max(u);
                files += f;
                bytes += b;
            }
            Err(e) => {
                failed += 1;
                eprintln!("client failed: {e}");
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let scans = ok * args.rounds;
    println!(
        "{ok} clients ok, {failed} failed; {scans} scans ({pages} SyncUpdates pages, {updates} updates per client) in {elapsed:.2} s: {:.1} scans/s, {:.1} ms per scan",
        scans as f64 / elapsed,
        if scans > 0 { scan_time.as_secs_f64() * 1000.0 / scans as f64 } else { 0.0 }
    );
    if args.download {
        println!("{files} files downloaded and verified ({bytes} bytes)");
    }
    if failed > 0 {
        anyhow::bail!("{failed} clients failed");
    }
    Ok(())
}
