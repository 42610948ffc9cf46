//! Every fuzz target's inputs replayed as an ordinary test: the seeds from the reference
//! captures, the committed corpus (`fuzz/corpus/<target>/`) and every crash a fuzzer ever
//! found (`fuzz/regressions/<target>/`). A panic names the target and the input.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn committed(folder: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = workspace().join("fuzz").join(folder).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (format!("{folder}/{target}/{}", e.file_name().to_string_lossy()), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

fn replay(target: &wsus_fuzz::Target, inputs: &[(String, Vec<u8>)]) -> Vec<String> {
    inputs
        .iter()
        .filter_map(|(name, bytes)| {
            std::panic::catch_unwind(|| (target.run)(bytes)).err().map(|_| format!("{}: {name}", target.name))
        })
        .collect()
}

#[test]
fn every_target_survives_its_seeds_corpus_and_regressions() {
    let reference = wsus_testdata::root();
    let mut failures = Vec::new();
    for target in wsus_fuzz::TARGETS {
        let seeds: Vec<(String, Vec<u8>)> = wsus_fuzz::seeds::seeds(target.name, &reference)
            .into_iter()
            .map(|s| (format!("seed {}", s.name), s.bytes))
            .collect();
        assert!(!seeds.is_empty(), "{}: no seeds found in {}", target.name, reference.display());
        let corpus = committed("corpus", target.name);
        let regressions = committed("regressions", target.name);
        println!("{}: {} seeds, {} corpus, {} regressions", target.name, seeds.len(), corpus.len(), regressions.len());
        for inputs in [&seeds, &corpus, &regressions] {
            failures.extend(replay(target, inputs));
        }
    }
    assert!(failures.is_empty(), "inputs that panic:\n{}", failures.join("\n"));
}

#[test]
fn every_target_has_a_libfuzzer_wrapper() {
    for target in wsus_fuzz::TARGETS {
        let file = workspace().join("fuzz/fuzz_targets").join(format!("{}.rs", target.name));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{} is missing", file.display()));
        assert!(text.contains(&format!("wsus_fuzz::{}(", target.name)), "{} calls another body", file.display());
    }
}

/// The properties the targets assert are real: inputs that break them are caught.
#[test]
fn the_targets_catch_what_they_check() {
    // A content request whose range would lie outside the file cannot be produced by the
    // parser, but the target's check itself must reject it: feed the parser's output
    // boundaries directly.
    use wsus_content::request::{Range, parse_range};
    assert_eq!(parse_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
    assert_eq!(parse_range(Some("bytes=-5"), 0), Range::Unsatisfiable);
    // Seeds really reach the decoders: the reference's SyncUpdates request decodes.
    let seeds = wsus_fuzz::seeds::seeds("wusp_request", &wsus_testdata::root());
    let decoded = seeds.iter().filter(|s| {
        wsus_soap::parse_request(&s.bytes, &wsus_soap::Limits::default())
            .ok()
            .is_some_and(|r| wsus_soap::wusp::SyncUpdatesRequest::decode(&r.operation).is_ok())
    });
    assert!(decoded.count() > 0, "no seed is a SyncUpdates request the decoder accepts");
}
