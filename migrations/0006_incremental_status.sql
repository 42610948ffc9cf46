-- Statuses are folded in from each batch of events instead of re-derived from all of a
-- computer's events: each row keeps the time of the report that set it, so a report that
-- arrives late (older than the one held) cannot roll the state back.

ALTER TABLE update_status ADD COLUMN reported_at timestamptz;
COMMENT ON COLUMN update_status.reported_at IS
    'TimeAtTarget of the report the status comes from (of two reports at one time, the one further along the install wins); NULL for rows stored before it was kept, where last_change_time stands in.';

-- Nothing reads a computer's raw events by computer any more (statuses are folded in as
-- events arrive; rollup reads them by arrival time), and the index cost a B-tree insert
-- per event on the ingestion path.
DROP INDEX reporting_event_computer;
