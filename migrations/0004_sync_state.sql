-- State of this server as a downstream server of an upstream one (MS-WSUSSS 3.1.1
-- Parent USS State, Synchronization History Table).

CREATE TABLE upstream_state (
    upstream_url                   text        PRIMARY KEY,
    auth_plugin_id                 text,
    auth_cookie_data               bytea,
    cookie_expiration              timestamptz,
    cookie_encrypted_data          bytea,
    config_anchor                  text,
    sync_anchor                    text,
    sync_filter                    jsonb,
    deployment_anchor              text,
    protocol_version               text,
    catalog_only_sync              boolean,
    lazy_sync                      boolean,
    server_hosts_psf_files         boolean,
    max_updates_per_request        integer,
    max_driver_sets_per_request    integer,
    max_computer_ids_in_request    integer,
    max_pnp_hardware_ids_in_request integer,
    max_updates_per_decryption_request integer,
    languages                      jsonb       NOT NULL DEFAULT '[]',
    rollup_reset_guid              uuid,
    last_rollup_time               timestamptz,
    updated_at                     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE upstream_state IS
    'What this server (as DSS) keeps of its upstream server: cookies, anchors and the limits from GetConfigData. Anchors are stored only after the data of their round is committed, so a killed sync resumes without loss or duplicates.';
COMMENT ON COLUMN upstream_state.upstream_url IS 'WSUS_UPSTREAM_URL this state belongs to; changing the upstream starts from nothing.';
COMMENT ON COLUMN upstream_state.auth_cookie_data IS 'AuthorizationCookie CookieData from DssAuthWebService GetAuthorizationCookie (opaque).';
COMMENT ON COLUMN upstream_state.cookie_encrypted_data IS 'Cookie EncryptedData from GetCookie (opaque); valid until cookie_expiration.';
COMMENT ON COLUMN upstream_state.config_anchor IS 'Last GetConfigData NewConfigAnchor (opaque).';
COMMENT ON COLUMN upstream_state.sync_anchor IS 'Last GetRevisionIdList Anchor (opaque).';
COMMENT ON COLUMN upstream_state.sync_filter IS 'The products and classifications sync_anchor was taken with: a changed filter asks for full lists (Delta false).';
COMMENT ON COLUMN upstream_state.deployment_anchor IS 'Last GetDeployments Anchor (replica mode; opaque).';
COMMENT ON COLUMN upstream_state.catalog_only_sync IS 'Upstream has no content service: download files from their MUUrl.';
COMMENT ON COLUMN upstream_state.lazy_sync IS 'Upstream fetches content only for approved updates.';
COMMENT ON COLUMN upstream_state.languages IS 'The upstream''s ServerSyncLanguageData list, merged from GetConfigData deltas.';
COMMENT ON COLUMN upstream_state.rollup_reset_guid IS 'RollupResetGuid of GetRollupConfiguration; a change means a full rollup is due.';

CREATE TABLE sync_history (
    sync_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upstream_url     text        NOT NULL,
    trigger          text        NOT NULL CHECK (trigger IN ('schedule', 'manual', 'startup', 'cli')),
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    result           text        NOT NULL DEFAULT 'running'
                     CHECK (result IN ('running', 'succeeded', 'failed', 'cancelled')),
    phase            text,
    done             bigint      NOT NULL DEFAULT 0,
    total            bigint      NOT NULL DEFAULT 0,
    heartbeat_at     timestamptz NOT NULL DEFAULT now(),
    error            text,
    revisions_new    integer     NOT NULL DEFAULT 0,
    revisions_updated integer    NOT NULL DEFAULT 0,
    deployments_changed integer  NOT NULL DEFAULT 0,
    files_queued     integer     NOT NULL DEFAULT 0,
    bytes_received   bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE sync_history IS
    'Synchronization history (MS-WSUSSS 3.1.1): one row per sync attempt, updated while it runs. Keep at least 15 days.';
COMMENT ON COLUMN sync_history.phase IS 'Current or last phase: authorization, config, categories, updates, deployments, content, rollup.';
COMMENT ON COLUMN sync_history.done IS 'Progress within the phase: items done of total.';
COMMENT ON COLUMN sync_history.heartbeat_at IS 'Refreshed by the running sync; a running row with an old heartbeat belonged to a process that died.';
CREATE INDEX sync_history_started ON sync_history (started_at DESC);
CREATE UNIQUE INDEX sync_history_one_running ON sync_history (upstream_url) WHERE result = 'running';
