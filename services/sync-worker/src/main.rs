fn main() -> std::process::ExitCode {
    wsus_service::main("sync-worker", wsus_config::SyncWorkerConfig::from_vars, |c| &c.common, sync_worker::serve)
}
