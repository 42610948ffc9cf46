fn main() -> std::process::ExitCode {
    wsus_service::main_with_commands(
        "sync-worker",
        wsus_config::SyncWorkerConfig::from_vars,
        |c| &c.common,
        sync_worker::serve,
        sync_worker::run,
    )
}
