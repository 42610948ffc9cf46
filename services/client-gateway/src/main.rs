fn main() -> std::process::ExitCode {
    wsus_service::main("client-gateway", wsus_config::GatewayConfig::from_vars, |c| &c.common, client_gateway::serve)
}
