//! Writes every target's seeds from the reference material into `<out>/<target>/`, the
//! corpus folders `cargo fuzz run` starts from. Usage: fuzz-seed <reference dir> <out dir>

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(reference), Some(out)) = (args.next().map(PathBuf::from), args.next().map(PathBuf::from)) else {
        eprintln!("usage: fuzz-seed <reference dir> <corpus dir>");
        std::process::exit(2);
    };
    for target in wsus_fuzz::TARGETS {
        let dir = out.join(target.name);
        std::fs::create_dir_all(&dir)?;
        let seeds = wsus_fuzz::seeds::seeds(target.name, &reference);
        for seed in &seeds {
            std::fs::write(dir.join(format!("seed-{}", seed.name)), &seed.bytes)?;
        }
        println!("{}: {} seeds", target.name, seeds.len());
    }
    Ok(())
}
