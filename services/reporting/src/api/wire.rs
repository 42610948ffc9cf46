//! The store's rows as the API's contract (`wsus_api`) shows them. Written out field by
//! field, so a change to a table changes the API only where someone writes it here.

use wsus_store::{approvals, cleanup, computers, rules, settings, updates, uss};

pub fn counts(c: computers::StatusCounts) -> wsus_api::StatusCounts {
    wsus_api::StatusCounts {
        installed: c.installed,
        needed: c.needed,
        downloaded: c.downloaded,
        failed: c.failed,
        installed_pending_reboot: c.installed_pending_reboot,
        not_applicable: c.not_applicable,
        unknown: c.unknown,
    }
}

pub fn computer_state(s: computers::ComputerState) -> wsus_api::ComputerState {
    match s {
        computers::ComputerState::UpToDate => wsus_api::ComputerState::UpToDate,
        computers::ComputerState::NeedsUpdates => wsus_api::ComputerState::NeedsUpdates,
        computers::ComputerState::WithErrors => wsus_api::ComputerState::WithErrors,
        computers::ComputerState::NotReported => wsus_api::ComputerState::NotReported,
    }
}

pub fn state_filter(s: wsus_api::ComputerState) -> computers::ComputerState {
    match s {
        wsus_api::ComputerState::UpToDate => computers::ComputerState::UpToDate,
        wsus_api::ComputerState::NeedsUpdates => computers::ComputerState::NeedsUpdates,
        wsus_api::ComputerState::WithErrors => computers::ComputerState::WithErrors,
        wsus_api::ComputerState::NotReported => computers::ComputerState::NotReported,
    }
}

pub fn computer(c: computers::Computer) -> wsus_api::Computer {
    let state = computer_state(c.state());
    wsus_api::Computer {
        computer_id: c.computer_id,
        name: c.name,
        ip_address: c.ip_address,
        os_description: c.os_description,
        os_version: c.os_version,
        os_locale: c.os_locale,
        processor_architecture: c.processor_architecture,
        manufacturer: c.manufacturer,
        model: c.model,
        bios_version: c.bios_version,
        client_version: c.client_version,
        requested_target_group_names: c.requested_target_group_names,
        group_ids: c.group_ids,
        downstream_server_id: c.downstream_server_id,
        downstream_server_name: c.downstream_server_name,
        registered_at: c.registered_at,
        last_contact_at: c.last_contact_at,
        last_sync_time: c.last_sync_time,
        last_reported_status_time: c.last_reported_status_time,
        last_scan_at: c.last_scan_at,
        state,
        counts: counts(c.counts),
    }
}

pub fn update_state(s: wsus_status::UpdateState) -> wsus_api::UpdateState {
    use wsus_status::UpdateState as S;
    match s {
        S::Unknown => wsus_api::UpdateState::Unknown,
        S::NotApplicable => wsus_api::UpdateState::NotApplicable,
        S::Needed => wsus_api::UpdateState::Needed,
        S::Downloaded => wsus_api::UpdateState::Downloaded,
        S::Installed => wsus_api::UpdateState::Installed,
        S::Failed => wsus_api::UpdateState::Failed,
        S::InstalledPendingReboot => wsus_api::UpdateState::InstalledPendingReboot,
    }
}

pub fn group(g: approvals::Group) -> wsus_api::Group {
    wsus_api::Group { group_id: g.group_id, name: g.name, parent_group_id: g.parent_group_id, is_builtin: g.is_builtin }
}

pub fn action(a: approvals::Action) -> wsus_api::Action {
    match a {
        approvals::Action::Install => wsus_api::Action::Install,
        approvals::Action::OptionalInstall => wsus_api::Action::OptionalInstall,
        approvals::Action::Uninstall => wsus_api::Action::Uninstall,
        approvals::Action::PreDeploymentCheck => wsus_api::Action::PreDeploymentCheck,
        approvals::Action::Block => wsus_api::Action::Block,
    }
}

pub fn approval(d: approvals::Deployment) -> wsus_api::Approval {
    wsus_api::Approval {
        deployment_id: d.deployment_id,
        update_id: d.update_id,
        revision_number: d.revision_number,
        group_id: d.group_id,
        action: action(d.action),
        deadline: d.deadline,
        is_assigned: d.is_assigned,
        download_priority: d.download_priority,
        admin_name: d.admin_name,
        last_change_time: d.last_change_time,
    }
}

/// An update (the store lists software and drivers only).
pub fn update(u: updates::Update) -> wsus_api::Update {
    wsus_api::Update {
        update_id: u.update_id,
        revision_number: u.revision_number,
        title: u.title,
        kb_article_id: u.kb_article_id,
        update_type: if u.update_type == "Driver" {
            wsus_api::UpdateType::Driver
        } else {
            wsus_api::UpdateType::Software
        },
        publication_state: u.publication_state,
        creation_date: u.creation_date,
        eula_id: u.eula_id,
        eula_accepted: u.eula_accepted,
        declined: u.declined,
        approved_group_ids: u.approved_group_ids,
        category_ids: u.category_ids,
        superseded_by: u.superseded_by,
    }
}

pub fn approval_filter(a: wsus_api::ApprovalState) -> updates::ApprovalFilter {
    match a {
        wsus_api::ApprovalState::Approved => updates::ApprovalFilter::Approved,
        wsus_api::ApprovalState::Unapproved => updates::ApprovalFilter::Unapproved,
        wsus_api::ApprovalState::Declined => updates::ApprovalFilter::Declined,
    }
}

pub fn update_summary(s: updates::UpdateSummary) -> wsus_api::UpdateSummary {
    let c = s.counts;
    wsus_api::UpdateSummary {
        update_id: s.update_id,
        title: s.title,
        kb_article_id: s.kb_article_id,
        installed: c.installed,
        needed: c.needed,
        downloaded: c.downloaded,
        failed: c.failed,
        installed_pending_reboot: c.installed_pending_reboot,
        not_applicable: c.not_applicable,
        unknown: c.unknown,
    }
}

pub fn rule_action(stored: &str) -> wsus_api::RuleAction {
    if stored == "OptionalInstall" { wsus_api::RuleAction::OptionalInstall } else { wsus_api::RuleAction::Install }
}

pub fn rule(r: rules::Rule) -> wsus_api::Rule {
    wsus_api::Rule {
        rule_id: r.rule_id,
        name: r.name,
        enabled: r.enabled,
        classification_ids: r.classification_ids,
        product_ids: r.product_ids,
        group_ids: r.group_ids,
        action: rule_action(&r.action),
        deadline_offset_hours: r.deadline_offset_hours,
    }
}

pub fn applied(a: rules::Applied) -> wsus_api::Applied {
    wsus_api::Applied {
        approved: a.approved,
        revisions_followed: a.revisions_followed,
        expired_declined: a.expired_declined,
    }
}

pub fn content_mode(m: settings::ContentMode) -> wsus_api::ContentMode {
    match m {
        settings::ContentMode::Lazy => wsus_api::ContentMode::Lazy,
        settings::ContentMode::Immediate => wsus_api::ContentMode::Immediate,
        settings::ContentMode::CatalogOnly => wsus_api::ContentMode::CatalogOnly,
    }
}

pub fn stored_content_mode(m: wsus_api::ContentMode) -> settings::ContentMode {
    match m {
        wsus_api::ContentMode::Lazy => settings::ContentMode::Lazy,
        wsus_api::ContentMode::Immediate => settings::ContentMode::Immediate,
        wsus_api::ContentMode::CatalogOnly => settings::ContentMode::CatalogOnly,
    }
}

pub fn schedule(s: settings::Schedule) -> wsus_api::Schedule {
    wsus_api::Schedule { syncs_per_day: s.syncs_per_day }
}

pub fn stored_schedule(s: wsus_api::Schedule) -> settings::Schedule {
    settings::Schedule { syncs_per_day: s.syncs_per_day }
}

pub fn retention(r: settings::Retention) -> wsus_api::Retention {
    wsus_api::Retention {
        event_days: r.event_days,
        sync_history_days: r.sync_history_days,
        stale_computer_days: r.stale_computer_days,
    }
}

pub fn category(c: settings::Category) -> wsus_api::Category {
    wsus_api::Category { category_id: c.category_id, category_type: c.category_type, title: c.title }
}

pub fn trigger(t: wsus_store::run::Trigger) -> wsus_api::Trigger {
    use wsus_store::run::Trigger as T;
    match t {
        T::Schedule => wsus_api::Trigger::Schedule,
        T::Manual => wsus_api::Trigger::Manual,
        T::Cli => wsus_api::Trigger::Cli,
        T::Startup => wsus_api::Trigger::Startup,
    }
}

pub fn run_result(r: wsus_store::run::RunResult) -> wsus_api::RunResult {
    use wsus_store::run::RunResult as R;
    match r {
        R::Running => wsus_api::RunResult::Running,
        R::Succeeded => wsus_api::RunResult::Succeeded,
        R::Failed => wsus_api::RunResult::Failed,
        R::Cancelled => wsus_api::RunResult::Cancelled,
    }
}

pub fn cleanup_run(r: cleanup::CleanupRun) -> wsus_api::CleanupRun {
    wsus_api::CleanupRun {
        run_id: r.run_id,
        trigger: trigger(r.trigger),
        started_at: r.started_at,
        finished_at: r.finished_at,
        result: run_result(r.result),
        job: r.job,
        // Each job's count is a whole number; anything else is not a count and is left out.
        counts: r
            .counts
            .as_object()
            .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_i64()?))).collect())
            .unwrap_or_default(),
        error: r.error,
    }
}

pub fn downstream_server(d: uss::DownstreamServer) -> wsus_api::DownstreamServer {
    wsus_api::DownstreamServer {
        server_id: d.server_id,
        name: d.name,
        parent_server_id: d.parent_server_id,
        version: d.version,
        is_replica: d.is_replica,
        last_sync_time: d.last_sync_time,
        last_rollup_time: d.last_rollup_time,
        computer_count: d.computer_count,
        computer_target_count: d.computer_target_count,
        computer_targets_needing_updates_count: d.computer_targets_needing_updates_count,
        computer_targets_with_update_errors_count: d.computer_targets_with_update_errors_count,
        computers_up_to_date_count: d.computers_up_to_date_count,
    }
}

pub fn published_package(p: wsus_store::publishing::PublishedPackage) -> wsus_api::PublishedPackage {
    wsus_api::PublishedPackage {
        update_id: p.update_id,
        revision_number: p.revision_number,
        title: p.title,
        vendor: p.vendor,
        product: p.product,
        installer_name: p.installer_name,
        file_sha1: p.file_sha1.map(hex::encode_upper),
        file_size: p.file_size.map(|s| s as u64),
        expired: p.expired,
        published_by: p.published_by,
        first_published_at: p.first_published_at,
        changed_at: p.changed_at,
    }
}
