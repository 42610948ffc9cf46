//! GetConfig follows the stored client configuration without a restart.

use std::time::Duration;

use sqlx::PgPool;
use wsus_config::{GatewayConfig, Vars};
use wsus_store::settings::{self, ClientConfig};

const REQUEST: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetConfig xmlns="http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService"><protocolVersion>2.90</protocolVersion></GetConfig></s:Body></s:Envelope>"#;

async fn post(http: &reqwest::Client, base: &str) -> (u16, String) {
    match http.post(format!("{base}/ClientWebService/client.asmx")).body(REQUEST).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap()),
        Err(e) if e.is_connect() => (0, String::new()), // not listening yet
        Err(e) => panic!("{e}"),
    }
}

#[sqlx::test(migrations = false)]
async fn a_changed_configuration_is_served_at_once(pool: PgPool) {
    let opts = pool.connect_options();
    let url = format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let vars = [
        ("DATABASE_URL", url),
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("WSUS_SERVER_FQDN", "gw.test".into()),
    ];
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = GatewayConfig::from_vars(&Vars::new(&lookup)).unwrap();
    let shell = wsus_service::Shell::start("client-gateway", &config.common).unwrap();
    tokio::spawn(client_gateway::serve(config, shell.clone()));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut body = String::new();
    for _ in 0..200 {
        let (status, b) = post(&http, &base).await;
        if status == 200 {
            body = b;
            break;
        }
        assert!(
            status == 0 || b.contains("<ErrorCode>ServerBusy</ErrorCode>"),
            "before the configuration is loaded: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(body.contains("<Name>MaxExtendedUpdatesPerRequest</Name><Value>50</Value>"), "{body}");
    assert!(body.contains(r"\\gw.test\UpdateServicesPackages"));

    let changed =
        ClientConfig { max_extended_updates_per_request: 25, package_server_share: None, ..ClientConfig::default() };
    settings::put(&pool, settings::CLIENT_CONFIG, &changed, "admin").await.unwrap();
    let mut after = String::new();
    for _ in 0..100 {
        after = post(&http, &base).await.1;
        if after.contains("<Value>25</Value>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(after.contains("<Name>MaxExtendedUpdatesPerRequest</Name><Value>25</Value>"), "{after}");
    assert!(!after.contains("PackageServerShare"), "an unset share is left out");
    let last_change = |b: &str| b.split("<LastChange>").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_ne!(last_change(&body), last_change(&after), "LastChange moves, so clients refetch (ConfigChanged)");
    shell.shutdown.cancel();
}
