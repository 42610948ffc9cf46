//! Our compressed sizes against the Xpress wire sizes of the real server's responses.

#[test]
fn sizes_are_the_same_order_as_the_real_servers() {
    let root = wsus_testdata::root().join("captures/wsus-m0-native");
    let mut compared = 0;
    for run in ["scan", "flow"] {
        let Ok(dirs) = std::fs::read_dir(root.join(run)) else { continue };
        for d in dirs.flatten() {
            let Ok(meta) = std::fs::read_to_string(d.path().join("meta.json")) else { continue };
            let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
            if !meta["wire_response_content_encoding"].as_str().is_some_and(|e| e.contains("xpress")) {
                continue;
            }
            let wire = meta["wire_response_content_length"].as_u64().unwrap() as f64;
            let body = std::fs::read(d.path().join("response.body")).unwrap();
            let ours = wsus_xpress::compress(&body);
            assert_eq!(wsus_xpress::decompress(&ours, body.len()).unwrap(), body);
            let ratio = ours.len() as f64 / wire;
            // The captures' cookies were blanked to runs of A, which compress better.
            assert!((0.3..=1.5).contains(&ratio), "{}: ours {} vs wire {wire}", d.path().display(), ours.len());
            compared += 1;
        }
    }
    assert!(compared >= 10, "compared {compared}");
}
