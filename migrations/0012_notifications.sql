-- Notifications: where administrators are told what changed (e-mail, webhooks), and the
-- outbox of what is to be told, written in the transaction that records the event.

CREATE TABLE notification_channel (
    channel_id  uuid        PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    kind        text        NOT NULL CHECK (kind IN ('webhook', 'slack', 'teams', 'email')),
    target      text        NOT NULL,
    secret_env  text,
    events      text[]      NOT NULL,
    enabled     boolean     NOT NULL DEFAULT true,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE notification_channel IS
    'Where notifications go: a webhook (JSON, optionally signed), a Slack- or Teams-compatible incoming webhook, or e-mail recipients.';
COMMENT ON COLUMN notification_channel.target IS 'The URL of a webhook, or the comma-separated recipients of e-mail.';
COMMENT ON COLUMN notification_channel.secret_env IS
    'For a webhook: the environment variable (from a Secret) holding its HMAC key; the key itself is never stored.';
COMMENT ON COLUMN notification_channel.events IS 'The event kinds this channel is told of.';

CREATE TABLE notification_outbox (
    notification_id  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id       uuid        NOT NULL REFERENCES notification_channel ON DELETE CASCADE,
    event_kind       text        NOT NULL,
    payload          jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    sent_at          timestamptz,
    claim            uuid
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX notification_outbox_channel ON notification_outbox (channel_id);
COMMENT ON TABLE notification_outbox IS
    'One row per notification and channel, written with the event; sent by one sender at a time, retried with backoff.';
COMMENT ON COLUMN notification_outbox.state IS
    'pending: due at next_attempt_at; sending: claimed by a sender until next_attempt_at (then due again); sent; failed: given up after its attempts.';
COMMENT ON COLUMN notification_outbox.claim IS
    'The claim of the sender sending it: only that claim may record the outcome, so a late sender cannot undo another''s.';
COMMENT ON COLUMN notification_outbox.attempts IS 'Claims so far (counted when claimed, so a sender that dies mid-send counts too).';
COMMENT ON COLUMN notification_outbox.payload IS 'What the event says (JSON), from which each channel''s message is made.';

-- The newest revision a successful sync has told of: the next tells of what came after it,
-- whether or not the syncs between them succeeded.
ALTER TABLE sync_history ADD COLUMN told_through_revision_id integer;
COMMENT ON COLUMN sync_history.told_through_revision_id IS
    'For a successful sync: the highest revision id when it finished; updates_synchronized tells of updates whose first revision is above the previous one.';
