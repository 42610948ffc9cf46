-- Target groups, approvals, computers and what they report (MS-WUSP 3.1.1 TargetGroup,
-- Client and Deployment tables; MS-WSUSSS 3.1.1 TargetGroup, Deployment, Client
-- computers, Update Status and Client computer activity summary tables).

CREATE TABLE target_group (
    group_id         uuid        PRIMARY KEY,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
    parent_group_id  uuid        REFERENCES target_group ON DELETE CASCADE,
    is_builtin       boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    changed_version  bigint      NOT NULL DEFAULT 1,
    CHECK (parent_group_id IS DISTINCT FROM group_id)
);
COMMENT ON TABLE target_group IS
    'Named, nestable groups of computers that approvals target. The two built-in groups exist on every WSUS.';
COMMENT ON COLUMN target_group.parent_group_id IS 'NULL only for All Computers; every other group nests under it or a descendant.';
CREATE UNIQUE INDEX target_group_name ON target_group (lower(name));
INSERT INTO target_group (group_id, name, parent_group_id, is_builtin) VALUES
    ('a0a08746-4dbe-4a37-9adf-9e7652c0b421', 'All Computers', NULL, true),
    ('b73ca6ed-5727-47f3-84de-015e03f6a88a', 'Unassigned Computers', 'a0a08746-4dbe-4a37-9adf-9e7652c0b421', true);

CREATE TABLE deployment (
    deployment_id      uuid        PRIMARY KEY,
    update_id          uuid        NOT NULL,
    revision_number    integer,
    group_id           uuid        NOT NULL REFERENCES target_group ON DELETE CASCADE,
    action             text        NOT NULL CHECK (action IN ('Install', 'OptionalInstall', 'Uninstall', 'PreDeploymentCheck', 'Block')),
    deadline           timestamptz,
    is_assigned        boolean     NOT NULL DEFAULT true,
    download_priority  smallint    NOT NULL DEFAULT 2 CHECK (download_priority BETWEEN 1 AND 3),
    go_live_time       timestamptz NOT NULL DEFAULT now(),
    admin_name         text,
    origin             text        NOT NULL DEFAULT 'admin' CHECK (origin IN ('admin', 'rule', 'upstream')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_change_time   timestamptz NOT NULL DEFAULT now(),
    changed_version    bigint      NOT NULL,
    deleted_at         timestamptz,
    deleted_version    bigint
);
COMMENT ON TABLE deployment IS
    'Approvals: an action for an update in a target group. Keyed to the update, not the revision, so a new revision inherits the approval. Removed approvals stay as dead rows (deleted_at) so GetDeployments can report DeadDeployments between anchors.';
COMMENT ON COLUMN deployment.revision_number IS
    'The revision current when approved (MS-WSUSSS ServerSyncDeployment RevisionNumber); an approval whose revision is not the latest is "stale" in rollup counts. NULL = whichever is latest.';
COMMENT ON COLUMN deployment.action IS
    'Explicit actions only. Evaluate and Bundle are implied for the rest of the catalog at SyncUpdates time, never stored. MS-WSUSSS codes: Install 0, Uninstall 1, PreDeploymentCheck 2 (scan only), Block 3.';
COMMENT ON COLUMN deployment.deadline IS 'Install by this time; NULL = no deadline (9999-12-31T23:59:59.9999999 on the wire).';
COMMENT ON COLUMN deployment.download_priority IS '1 low, 2 normal, 3 high (MS-WSUSSS DownloadPriority).';
COMMENT ON COLUMN deployment.go_live_time IS 'When the deployment takes effect for clients.';
COMMENT ON COLUMN deployment.origin IS 'admin: made here; rule: made by an auto-approval rule; upstream: received from the USS in replica mode.';
COMMENT ON COLUMN deployment.last_change_time IS 'Deployment.LastChangeTime served to clients.';
COMMENT ON COLUMN deployment.changed_version IS 'catalog_state.version of the last change (the deployment anchor).';
COMMENT ON COLUMN deployment.deleted_version IS 'catalog_state.version at which the approval was removed.';
CREATE UNIQUE INDEX deployment_live ON deployment (update_id, group_id) WHERE deleted_at IS NULL;
CREATE INDEX deployment_changed_version ON deployment (changed_version);
CREATE INDEX deployment_group ON deployment (group_id) WHERE deleted_at IS NULL;

CREATE TABLE auto_approval_rule (
    rule_id              uuid        PRIMARY KEY,
    name                 text        NOT NULL,
    enabled              boolean     NOT NULL DEFAULT true,
    classification_ids   uuid[]      NOT NULL DEFAULT '{}',
    product_ids          uuid[]      NOT NULL DEFAULT '{}',
    group_ids            uuid[]      NOT NULL DEFAULT '{}',
    action               text        NOT NULL DEFAULT 'Install' CHECK (action IN ('Install', 'OptionalInstall')),
    deadline_offset      interval,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auto_approval_rule IS
    'Automatic approval rules: new revisions in any of the classifications AND any of the products (an empty list matches all) are approved for each group.';
COMMENT ON COLUMN auto_approval_rule.deadline_offset IS 'Deadline relative to the approval time; NULL = none.';

CREATE TABLE downstream_server (
    server_id         uuid        PRIMARY KEY,
    fqdn              text        NOT NULL,
    parent_server_id  uuid,
    version           text,
    is_replica        boolean     NOT NULL DEFAULT false,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_auth_at      timestamptz,
    last_sync_time    timestamptz,
    last_rollup_time  timestamptz,
    update_count                                          integer,
    declined_update_count                                 integer,
    approved_update_count                                 integer,
    not_approved_update_count                             integer,
    updates_with_stale_update_approvals_count             integer,
    expired_update_count                                  integer,
    critical_or_security_updates_not_approved_for_install_count integer,
    wsus_infrastructure_updates_not_approved_for_install_count  integer,
    updates_with_client_errors_count                      integer,
    updates_with_server_errors_count                      integer,
    updates_needing_files_count                           integer,
    updates_needed_by_computers_count                     integer,
    updates_up_to_date_count                              integer,
    custom_computer_target_group_count                    integer,
    computer_target_count                                 integer,
    computer_targets_needing_updates_count                integer,
    computer_targets_with_update_errors_count             integer,
    computers_up_to_date_count                            integer
);
COMMENT ON TABLE downstream_server IS
    'MS-WSUSSS DSS Table: downstream servers that sync from this one (added at their first GetAuthorizationCookie) and their descendants (added by RollupDownstreamServers). The *_count columns are the ServerSummary of the last rollup.';
COMMENT ON COLUMN downstream_server.parent_server_id IS 'The server it syncs from; NULL when that is this server.';
COMMENT ON COLUMN downstream_server.version IS 'WSUS version it reports, e.g. 10.0.26100.';
COMMENT ON COLUMN downstream_server.last_auth_at IS 'Last GetAuthorizationCookie from it (direct children only).';

CREATE TABLE computer (
    computer_id                      text        PRIMARY KEY CHECK (length(computer_id) BETWEEN 1 AND 256),
    parent_server_id                 uuid        REFERENCES downstream_server ON DELETE CASCADE,
    dns_name                         text,
    ip_address                       inet,
    os_major_version                 integer,
    os_minor_version                 integer,
    os_build_number                  integer,
    os_service_pack_major_number     smallint,
    os_service_pack_minor_number     smallint,
    os_locale                        text,
    os_family                        text,
    os_description                   text,
    suite_mask                       smallint,
    old_product_type                 smallint,
    new_product_type                 integer,
    system_metrics                   integer,
    processor_architecture           text,
    computer_manufacturer            text,
    computer_model                   text,
    bios_name                        text,
    bios_version                     text,
    bios_release_date                timestamptz,
    firmware_version                 text,
    oem                              text,
    device_type                      text,
    mobile_operator                  text,
    client_version                   text,
    requested_target_group_names     text[]      NOT NULL DEFAULT '{}',
    registered_at                    timestamptz,
    last_contact_at                  timestamptz,
    last_sync_time                   timestamptz,
    last_sync_result                 smallint    NOT NULL DEFAULT 0 CHECK (last_sync_result BETWEEN 0 AND 2),
    last_reported_status_time        timestamptz,
    last_reported_reboot_time        timestamptz,
    last_inventory_time              timestamptz,
    effective_last_detection_time    timestamptz,
    details_changed                  boolean     NOT NULL DEFAULT true,
    last_sent_status_rollup_number   integer     NOT NULL DEFAULT 0,
    last_received_status_rollup_number integer   NOT NULL DEFAULT 0,
    last_status_rollup_time          timestamptz,
    created_at                       timestamptz NOT NULL DEFAULT now(),
    updated_at                       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE computer IS
    'Client computers: those that talk to this server (MS-WUSP Client Table) and those rolled up from downstream servers (MS-WSUSSS Client computers table).';
COMMENT ON COLUMN computer.computer_id IS 'The client id (SusClientId GUID as text, the GetAuthorizationCookie clientId); rolled-up ids are strings.';
COMMENT ON COLUMN computer.parent_server_id IS 'The downstream server it gets updates from; NULL = this server.';
COMMENT ON COLUMN computer.dns_name IS 'RegisterComputer DnsName / rollup FullDomainName.';
COMMENT ON COLUMN computer.processor_architecture IS 'As the client sent it, e.g. AMD64 (RegisterComputer) — not the Reporting enum.';
COMMENT ON COLUMN computer.os_description IS 'As sent; Windows 11 says "Windows 10 Pro", so tell them apart by os_build_number.';
COMMENT ON COLUMN computer.requested_target_group_names IS 'Groups the client asked for (client-side targeting, GetAuthorizationCookie targetGroupName).';
COMMENT ON COLUMN computer.registered_at IS 'Last RegisterComputer; NULL = never registered (or known only through rollup).';
COMMENT ON COLUMN computer.last_contact_at IS 'Last time the client called any web service.';
COMMENT ON COLUMN computer.last_sync_time IS 'Last completed SyncUpdates scan.';
COMMENT ON COLUMN computer.last_sync_result IS '0 unknown, 1 succeeded, 2 failed (MS-WSUSSS LastSyncResult).';
COMMENT ON COLUMN computer.last_reported_status_time IS 'Last ReportEventBatch received from it.';
COMMENT ON COLUMN computer.effective_last_detection_time IS 'MS-WSUSSS EffectiveLastDetectionTime.';
COMMENT ON COLUMN computer.details_changed IS 'MS-WSUSSS HasDetailsChanged: details must be sent with the next RollupComputers.';
COMMENT ON COLUMN computer.last_sent_status_rollup_number IS 'RollupNumber last sent for it to our USS (RollupComputerStatus).';
COMMENT ON COLUMN computer.last_received_status_rollup_number IS 'RollupNumber last received for it from a DSS.';
CREATE INDEX computer_parent_server ON computer (parent_server_id);
CREATE INDEX computer_last_contact ON computer (last_contact_at);
CREATE INDEX computer_dns_name ON computer (lower(dns_name));

CREATE TABLE computer_group_membership (
    computer_id  text        NOT NULL REFERENCES computer ON DELETE CASCADE,
    group_id     uuid        NOT NULL REFERENCES target_group ON DELETE CASCADE,
    source       text        NOT NULL DEFAULT 'admin' CHECK (source IN ('admin', 'client', 'rollup')),
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (computer_id, group_id)
);
COMMENT ON TABLE computer_group_membership IS
    'Which groups a computer belongs to. admin: server-side targeting; client: the group the client asked for (client-side targeting); rollup: as reported by a downstream server. A computer with no row is in Unassigned Computers.';
CREATE INDEX computer_group_membership_group ON computer_group_membership (group_id);

CREATE TABLE update_status (
    computer_id       text        NOT NULL REFERENCES computer ON DELETE CASCADE,
    update_id         uuid        NOT NULL,
    revision_number   integer,
    status            smallint    NOT NULL CHECK (status BETWEEN 0 AND 6),
    last_change_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (computer_id, update_id)
);
COMMENT ON TABLE update_status IS
    'Per-computer, per-update status derived from events (or received in RollupComputerStatus).';
COMMENT ON COLUMN update_status.status IS
    'MS-WSUSSS SummarizationState: 0 Unknown, 1 NotApplicable, 2 Needed (not installed), 3 Downloaded, 4 Installed, 5 Failed, 6 InstalledPendingReboot.';
CREATE INDEX update_status_update ON update_status (update_id, status);

CREATE TABLE reporting_event (
    event_instance_id       uuid        NOT NULL,
    time_at_target          timestamptz NOT NULL,
    computer_id             text        NOT NULL,
    received_at             timestamptz NOT NULL DEFAULT now(),
    namespace_id            smallint    NOT NULL DEFAULT 1,
    event_id                smallint    NOT NULL,
    source_id               smallint,
    update_id               uuid,
    revision_number         integer,
    win32_hresult           integer,
    app_name                text,
    replacement_strings     text[]      NOT NULL DEFAULT '{}',
    misc_data               text[]      NOT NULL DEFAULT '{}',
    computer_brand          text,
    computer_model          text,
    bios_revision           text,
    processor_architecture  text,
    os_version              text,
    os_locale_id            integer,
    device_id               text,
    PRIMARY KEY (event_instance_id, time_at_target)
) PARTITION BY RANGE (time_at_target);
COMMENT ON TABLE reporting_event IS
    'Raw client events (MS-WUSP ReportingEvent), kept for a configurable period. Partitioned by time so old events go by dropping partitions; rows outside every dated partition land in reporting_event_default.';
COMMENT ON COLUMN reporting_event.event_instance_id IS
    'BasicData/EventInstanceID: with time_at_target the idempotency key, so a re-sent batch changes nothing (a re-sent event carries both unchanged).';
COMMENT ON COLUMN reporting_event.time_at_target IS 'BasicData/TimeAtTarget: the client''s clock, UTC.';
COMMENT ON COLUMN reporting_event.update_id IS 'BasicData/UpdateID; NULL for the all-zero GUID (no update involved).';
COMMENT ON COLUMN reporting_event.misc_data IS 'ExtendedData/MiscData tag=value strings, kept as sent (U, V, W, g, h carry update status lists).';
COMMENT ON COLUMN reporting_event.os_version IS 'ExtendedData/OSVersion as Major.Minor.Build.Revision.SPMajor.SPMinor.';
COMMENT ON COLUMN reporting_event.device_id IS 'ExtendedData/DeviceID: empty for non-drivers.';
CREATE TABLE reporting_event_default PARTITION OF reporting_event DEFAULT;
CREATE INDEX reporting_event_computer ON reporting_event (computer_id, time_at_target);

CREATE TABLE client_activity_summary (
    update_id                     uuid     NOT NULL,
    server_id                     uuid     NOT NULL,
    os_major_version              integer  NOT NULL,
    os_minor_version              integer  NOT NULL,
    os_build_number               integer  NOT NULL,
    os_service_pack_major_number  integer  NOT NULL,
    os_service_pack_minor_number  integer  NOT NULL,
    os_locale                     text     NOT NULL,
    suite_mask                    smallint NOT NULL,
    old_product_type              smallint NOT NULL,
    new_product_type              integer  NOT NULL,
    system_metrics                integer  NOT NULL,
    processor_architecture        text     NOT NULL DEFAULT '',
    install_success_count         integer  NOT NULL DEFAULT 0,
    install_failure_count         integer  NOT NULL DEFAULT 0,
    PRIMARY KEY (update_id, server_id, os_major_version, os_minor_version, os_build_number,
                 os_service_pack_major_number, os_service_pack_minor_number, os_locale,
                 suite_mask, old_product_type, new_product_type, system_metrics, processor_architecture)
);
COMMENT ON TABLE client_activity_summary IS
    'MS-WSUSSS Client computer activity summary table: install successes and failures per update, per server the computers get updates from, per operating system. On a DSS the rows sent in a rollup are deleted afterwards.';
COMMENT ON COLUMN client_activity_summary.server_id IS 'The server the computers get updates from (this server''s own id for its clients).';

CREATE TABLE downstream_client_summary (
    server_id                     uuid     NOT NULL REFERENCES downstream_server ON DELETE CASCADE,
    os_major_version              integer  NOT NULL,
    os_minor_version              integer  NOT NULL,
    os_build_number               integer  NOT NULL,
    os_service_pack_major_number  integer  NOT NULL,
    os_service_pack_minor_number  integer  NOT NULL,
    os_locale                     text     NOT NULL,
    suite_mask                    smallint NOT NULL,
    old_product_type              smallint NOT NULL,
    new_product_type              integer  NOT NULL,
    system_metrics                integer  NOT NULL,
    processor_architecture        text     NOT NULL,
    computer_count                integer  NOT NULL,
    PRIMARY KEY (server_id, os_major_version, os_minor_version, os_build_number,
                 os_service_pack_major_number, os_service_pack_minor_number, os_locale,
                 suite_mask, old_product_type, new_product_type, system_metrics, processor_architecture)
);
COMMENT ON TABLE downstream_client_summary IS
    'ClientSummaries of RollupDownstreamServers: how many computers of each operating system a downstream server has.';
