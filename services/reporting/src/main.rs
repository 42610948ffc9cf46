fn main() -> std::process::ExitCode {
    wsus_service::main("reporting", wsus_config::ReportingConfig::from_vars, |c| &c.common, reporting::serve)
}
