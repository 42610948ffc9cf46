-- Clients contacting per hour: a computer's row for an hour is written when its
-- last_contact_at first moves into that hour, by a trigger, so every writer of
-- last_contact_at (registration, scans, event batches, rollups) is counted and the hot path
-- pays one insert per computer per hour, not per contact. Rows of different computers never
-- contend (the computer row is already locked by the statement that fires the trigger).
CREATE TABLE computer_contact_hour (
    hour        timestamptz NOT NULL,
    computer_id text        NOT NULL,
    PRIMARY KEY (hour, computer_id)
);
COMMENT ON TABLE computer_contact_hour IS
    'One row per computer and UTC hour in which it was in contact (directly, or as rolled up by a downstream server). Written by the computer table''s triggers; kept eight days (cleanup purges older hours). Not a foreign key: a removed computer''s past contacts still happened.';
COMMENT ON COLUMN computer_contact_hour.hour IS 'The contact time truncated to the UTC hour.';

CREATE FUNCTION note_computer_contact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO computer_contact_hour (hour, computer_id)
    VALUES (date_trunc('hour', NEW.last_contact_at, 'UTC'), NEW.computer_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION note_computer_contact() IS
    'Trigger function: records that NEW.computer_id was in contact in the hour of NEW.last_contact_at.';

CREATE TRIGGER computer_contact_inserted AFTER INSERT ON computer FOR EACH ROW
    WHEN (NEW.last_contact_at IS NOT NULL)
    EXECUTE FUNCTION note_computer_contact();
CREATE TRIGGER computer_contact_advanced AFTER UPDATE OF last_contact_at ON computer FOR EACH ROW
    WHEN (NEW.last_contact_at IS NOT NULL AND date_trunc('hour', NEW.last_contact_at, 'UTC')
          IS DISTINCT FROM date_trunc('hour', OLD.last_contact_at, 'UTC'))
    EXECUTE FUNCTION note_computer_contact();

-- A computer's history in the console is the outcome of each install and uninstall it
-- reported, and each failed download (failed, succeeded, pending a restart, canceled, timed
-- out), with the HRESULT, newest first. Only those events are indexed: the detection and
-- status events of every scan (147, 156) and the progress events of an install (167
-- download started, 162 downloaded, 181 install started) are not, so the ingestion path
-- pays for the index on one event in four of a successful install and on none of a scan.
-- The list is wsus-store's computers::HISTORY_EVENTS, which the query repeats.
-- ON ONLY: building it on every partition here would hold off event ingestion for as long
-- as reading 90 days of events takes. The partitioned index starts invalid; reporting
-- builds each partition's index concurrently in the background and attaches it
-- (wsus-store cleanup::build_outcome_indexes), and it becomes valid once all are.
CREATE INDEX IF NOT EXISTS reporting_event_outcome
    ON ONLY reporting_event (computer_id, time_at_target DESC)
    WHERE event_id IN (161, 182, 183, 184, 186, 187, 190, 191, 192, 195, 197, 198, 199, 200, 201, 203, 204,
                       221, 222, 223, 224, 225);

-- The console lists updates newest first: the latest revisions of software and drivers in
-- the order of their release date (undated ones last), read along this index a page at
-- a time (backwards), whatever the catalog's size.
CREATE INDEX IF NOT EXISTS revision_newest
    ON revision ((COALESCE(creation_date, '-infinity'::timestamptz)), update_id)
    WHERE update_type IN ('Software', 'Driver');

-- The console lists computers by last contact (longest silent first, or latest first)
-- along this index; it replaces the plain index on last_contact_at, which nothing else
-- reads (a computer update maintains one index on the column, as before).
CREATE INDEX IF NOT EXISTS computer_sort_contact
    ON computer ((COALESCE(last_contact_at, 'infinity'::timestamptz)), computer_id);
DROP INDEX IF EXISTS computer_last_contact;
