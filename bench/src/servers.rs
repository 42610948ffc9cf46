//! A client-gateway with the reporting service it hands client events to.

use std::collections::HashMap;
use std::time::Duration;

use wsus_e2e::{Service, free_port, wait_for_status};

pub struct Servers {
    pub gateway: Service,
    pub reporting: Service,
    /// http://127.0.0.1:port of the gateway.
    pub base_url: String,
}

/// Starts both on `db` (the gateway with `gateway_env` added) and waits until they are ready.
pub async fn start(db: &str, gateway_env: &[(&'static str, String)]) -> anyhow::Result<Servers> {
    let (gw, rep, rep_grpc) = (free_port(), free_port(), free_port());
    let reporting = Service::spawn(
        "reporting",
        &HashMap::from([
            ("DATABASE_URL", db.to_owned()),
            ("WSUS_HTTP_ADDR", format!("127.0.0.1:{rep}")),
            ("WSUS_GRPC_ADDR", format!("127.0.0.1:{rep_grpc}")),
            ("RUST_LOG", "warn".to_owned()),
        ]),
    );
    let mut env = HashMap::from([
        ("DATABASE_URL", db.to_owned()),
        ("WSUS_HTTP_ADDR", format!("127.0.0.1:{gw}")),
        ("WSUS_REPORTING_GRPC", format!("http://127.0.0.1:{rep_grpc}")),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    env.extend(gateway_env.iter().cloned());
    let gateway = Service::spawn("client-gateway", &env);
    let http = reqwest::Client::new();
    for port in [rep, gw] {
        wait_for_status(&http, &format!("http://127.0.0.1:{port}/readyz"), 200, Duration::from_secs(600)).await;
    }
    Ok(Servers { gateway, reporting, base_url: format!("http://127.0.0.1:{gw}") })
}
