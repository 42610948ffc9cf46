//! `catalog-gen`: writes a generated catalog (documents, and file bytes) to disk.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate a closed, realistic update catalog for tests and benchmarks")]
struct Args {
    /// Directory for the update documents.
    out: PathBuf,
    /// How many revisions.
    #[arg(long, default_value_t = 1000)]
    revisions: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Content store directory for the file bytes (none: digests only).
    #[arg(long)]
    content: Option<PathBuf>,
    /// Comma-separated languages; the first is the default.
    #[arg(long, default_value = "en,de,fr")]
    languages: String,
    #[arg(long, default_value_t = 512)]
    min_file_size: u64,
    #[arg(long, default_value_t = 4096)]
    max_file_size: u64,
    /// Pad each leaf update's applicability rules to at least this many bytes (Windows
    /// updates carry about 225 KB of Core XML).
    #[arg(long, default_value_t = 0)]
    core_bytes: usize,
    /// The leaves of the first this-many bundles carry files of --large-file-size bytes.
    #[arg(long, default_value_t = 0)]
    large_bundles: usize,
    #[arg(long, default_value_t = 0)]
    large_file_size: u64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.min_file_size <= a.max_file_size, "--min-file-size is above --max-file-size");
    let opts = wsus_catalog_gen::Options {
        seed: a.seed,
        revisions: a.revisions,
        languages: a.languages.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
        file_size: (a.min_file_size, a.max_file_size),
        core_bytes: a.core_bytes,
        large_bundles: a.large_bundles,
        large_file_size: a.large_file_size,
    };
    anyhow::ensure!(!opts.languages.is_empty(), "--languages names none");
    let (docs, files) = wsus_catalog_gen::write(&opts, &a.out, a.content.as_deref())?;
    match &a.content {
        Some(c) => println!("{docs} documents in {}, {files} files in {}", a.out.display(), c.display()),
        None => println!("{docs} documents in {}, referencing {files} files (bytes not written)", a.out.display()),
    }
    Ok(())
}
