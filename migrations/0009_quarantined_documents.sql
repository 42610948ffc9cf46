-- Documents an upstream sent that this server could not read (a document a parser does
-- not understand yet, a damaged Cabinet): kept aside so the rest of the sync goes on and
-- its anchor advances, and asked for again by every later sync, so a fixed parser (or a
-- mended upstream) brings them in without a full resync.
CREATE TABLE quarantined_document (
    upstream_url     text        NOT NULL,
    update_id        uuid        NOT NULL,
    revision_number  integer     NOT NULL,
    error            text        NOT NULL,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_tried_at    timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (upstream_url, update_id, revision_number)
);
COMMENT ON TABLE quarantined_document IS
    'Revisions whose documents an upstream sent but this server could not read; every sync asks for them again and a row goes once its document is stored.';
COMMENT ON COLUMN quarantined_document.error IS 'Why the last attempt could not read it.';
COMMENT ON COLUMN quarantined_document.attempts IS 'How many syncs have received it and failed to read it.';

ALTER TABLE sync_history ADD COLUMN revisions_quarantined integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN sync_history.revisions_quarantined IS
    'Documents the upstream sent this attempt that could not be read (set aside in quarantined_document).';
