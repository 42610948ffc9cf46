fn main() -> std::process::ExitCode {
    client_gateway::keep_large_allocations_mapped();
    wsus_service::main("client-gateway", wsus_config::GatewayConfig::from_vars, |c| &c.common, client_gateway::serve)
}
