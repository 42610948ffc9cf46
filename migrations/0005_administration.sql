-- What the management API searches and keeps: update titles and KB numbers, where each
-- auto-approval rule got to, and the retention of raw events.

ALTER TABLE revision ADD COLUMN title text;
ALTER TABLE revision ADD COLUMN kb_article_id text;
COMMENT ON COLUMN revision.title IS
    'LocalizedProperties/Title in English (or the first language when there is no English one), for search and reports; NULL for revisions imported before it was kept.';
COMMENT ON COLUMN revision.kb_article_id IS '/Update/Properties/KBArticleID, digits only (e.g. 5034441).';
CREATE INDEX revision_kb_article_id ON revision (kb_article_id) WHERE kb_article_id IS NOT NULL;
-- Revisions already stored: titles from their LocalizedProperties fragment, KB numbers
-- from their document (both kept uncompressed so far).
UPDATE revision r SET title = (
    SELECT substring(convert_from(f.body, 'UTF8') FROM '<Title>([^<]*)</Title>') FROM fragment f
    WHERE f.revision_id = r.revision_id AND f.kind = 'LocalizedProperties' AND f.compression = 'none'
    ORDER BY f.locale = 'en' DESC, f.locale LIMIT 1);
UPDATE revision r SET kb_article_id = (
    SELECT substring(convert_from(x.body, 'UTF8') FROM '<(?:[A-Za-z]+:)?KBArticleID>([0-9]+)</') FROM revision_xml x
    WHERE x.revision_id = r.revision_id AND x.compression = 'none');

ALTER TABLE auto_approval_rule ADD COLUMN applied_version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN auto_approval_rule.applied_version IS
    'catalog_state.version up to which the rule has been applied: revisions changed after it are new to the rule.';

ALTER TABLE computer ADD COLUMN last_status_change_at timestamptz;
COMMENT ON COLUMN computer.last_status_change_at IS 'When a derived or rolled-up update status of this computer last changed.';
CREATE INDEX update_status_computer_status ON update_status (computer_id, status);

-- Dated partitions of reporting_event: one per UTC day, created ahead by reporting and
-- dropped whole once older than the retention (never a long DELETE).
CREATE FUNCTION reporting_event_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'reporting_event_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF reporting_event FOR VALUES FROM (%L) TO (%L)',
            name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
EXCEPTION WHEN check_violation THEN
    -- The default partition already holds events of that day: they stay there and are
    -- purged in batches.
    RETURN NULL;
END $$;
COMMENT ON FUNCTION reporting_event_partition(date) IS
    'Creates (if absent) the partition of reporting_event for one UTC day and returns its name; NULL when the default partition already holds rows of that day.';

CREATE TABLE cleanup_run (
    run_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger      text        NOT NULL CHECK (trigger IN ('schedule', 'manual', 'cli')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    result       text        NOT NULL DEFAULT 'running' CHECK (result IN ('running', 'succeeded', 'failed')),
    job          text,
    counts       jsonb       NOT NULL DEFAULT '{}',
    error        text
);
COMMENT ON TABLE cleanup_run IS
    'Runs of the continuous cleanup (sync-worker): each job works in small committed batches, so a run that stops is resumed by the next.';
COMMENT ON COLUMN cleanup_run.job IS 'The job running now (or that failed).';
COMMENT ON COLUMN cleanup_run.counts IS 'Rows (or files) each job removed or declined, by job name.';
