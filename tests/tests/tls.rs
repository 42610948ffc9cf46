//! HTTPS on the TLS port (8531 by default): a simulated client completes a scan over it
//! with a test certificate; the file locations it is given are plain HTTP on the content
//! (plain) port, as a real WSUS configured for SSL gives them ("WSUS uses SSL for metadata
//! only, not for update files"; MS-WUSP 2.1: content at http://serverUrl:[contentPort]);
//! the plain port keeps answering plain HTTP.

use wsus_e2e::agent::{Agent, FileMeta};
use wsus_e2e::{PgCluster, System, TestCertificate, free_port};

#[tokio::test(flavor = "multi_thread")]
async fn a_client_scans_over_https() {
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("wsus").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    let opts = wsus_catalog_gen::Options { revisions: 200, seed: 3, ..Default::default() };
    wsus_catalog_gen::write(&opts, &dir.path().join("docs"), Some(&content)).unwrap();
    wsus_e2e::import(&db, &dir.path().join("docs"));

    let certificate = TestCertificate::new();
    let port = free_port();
    let tls = [
        ("WSUS_TLS_ADDR", format!("127.0.0.1:{port}")),
        ("WSUS_TLS_CERT", certificate.cert.display().to_string()),
        ("WSUS_TLS_KEY", certificate.key.display().to_string()),
    ];
    let system = System::start_with(&db, Some(&content), &tls);
    system.wait_ready(&reqwest::Client::new()).await;

    let https = format!("https://localhost:{port}");
    let mut agent = Agent::with_http(&https, certificate.client());
    agent.handshake(true).await.unwrap();
    let scan = agent.scan().await.unwrap();
    assert!(scan.new.len() > 100, "{} updates", scan.new.len());

    // Extended info for a leaf with a file: its URL is plain HTTP on the content port (the
    // host the client used), and downloads.
    let leaf = agent.received.iter().find(|(_, r)| r.is_leaf && r.action == "Bundle").map(|(id, _)| *id).unwrap();
    let (fragments, files) = agent.extended_info(&[leaf]).await.unwrap();
    let extended = &fragments.iter().find(|(_, x)| x.starts_with("<ExtendedProperties")).unwrap().1;
    let meta = &FileMeta::from_extended(extended)[0];
    let url = &files.iter().find(|(d, _)| *d == meta.sha1).unwrap().1;
    let plain_port = system.gateway_url.rsplit(':').next().unwrap().trim_end_matches('/');
    assert!(url.starts_with(&format!("http://localhost:{plain_port}/Content/")), "{url}");
    let bytes = agent.download(url, meta, 4096).await.unwrap();
    assert_eq!(bytes.len() as u64, meta.size);

    // The WSDL names the HTTPS address too; the plain port still answers plain HTTP.
    let wsdl = certificate.client().get(format!("{https}/ClientWebService/Client.asmx?wsdl")).send().await.unwrap();
    assert!(wsdl.text().await.unwrap().contains(&format!("location=\"{https}/ClientWebService/Client.asmx\"")));
    let mut plain = Agent::new(&system.gateway_url);
    plain.handshake(true).await.unwrap();
    assert_eq!(plain.scan().await.unwrap().new.len(), scan.new.len());
    // A client that does not trust the certificate gets no answer.
    assert!(reqwest::get(format!("{https}/ClientWebService/Client.asmx?wsdl")).await.is_err());
    drop(pg);
}
