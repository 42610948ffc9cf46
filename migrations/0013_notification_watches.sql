-- Notifications of conditions rather than recorded events: the status summary on a
-- schedule, computers newly failing an install, downstream servers that stopped rolling
-- up, the signing certificate nearing expiry. Each is told once: what was told is kept,
-- so every replica may look and only one tells.

CREATE TABLE notification_schedule (
    event_kind  text        PRIMARY KEY,
    next_at     timestamptz NOT NULL
);
COMMENT ON TABLE notification_schedule IS
    'When a scheduled notification (the status summary) is next due; the replica that moves next_at on sends it.';

CREATE TABLE notification_told (
    event_kind  text        NOT NULL,
    subject     text        NOT NULL,
    told_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_kind, subject)
);
COMMENT ON TABLE notification_told IS
    'Conditions already told (a silent downstream server by id, a certificate by thumbprint and stage): told again only after the row is gone, i.e. after the condition ended.';

CREATE TABLE install_failure_told (
    computer_id  text NOT NULL REFERENCES computer ON DELETE CASCADE,
    update_id    uuid NOT NULL,
    PRIMARY KEY (computer_id, update_id)
);
COMMENT ON TABLE install_failure_told IS
    'Failed installs (update_status 5) already told; a row goes when the status leaves Failed, so a new failure is told again.';

-- A webhook's URL (a Slack or Teams URL is its token) may be kept in a Secret instead of
-- the database: the channel then names reporting's environment variable holding it.
ALTER TABLE notification_channel ADD COLUMN target_env text;
COMMENT ON COLUMN notification_channel.target_env IS
    'For a webhook whose URL is kept in a Secret: the environment variable of reporting holding it (target is then empty).';

-- Finds the failed statuses without reading every status; only failed rows are indexed.
CREATE INDEX update_status_failed ON update_status (computer_id, update_id) WHERE status = 5;
