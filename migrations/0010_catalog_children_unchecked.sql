-- The rows a revision's document brings (its stored XML, fragments, prerequisites, bundle
-- members, supersedence, file links, categories) are written by wsus-store alone, in the
-- transaction that writes the revision itself, set-wise. Their foreign keys checked each
-- row against revision one lookup (and row lock) at a time, which cost a sync about as
-- much as writing the rows (sync import benchmark, README). The checks go; the cascade
-- stays: deleting or truncating revisions deletes these rows, by the triggers below. An
-- older release still running during an upgrade deletes revisions the same way and sees
-- the same rows.

ALTER TABLE revision_xml DROP CONSTRAINT revision_xml_revision_id_fkey;
ALTER TABLE fragment DROP CONSTRAINT fragment_revision_id_fkey;
ALTER TABLE prerequisite DROP CONSTRAINT prerequisite_revision_id_fkey;
ALTER TABLE bundle_member DROP CONSTRAINT bundle_member_revision_id_fkey;
ALTER TABLE supersedence DROP CONSTRAINT supersedence_revision_id_fkey;
ALTER TABLE revision_file DROP CONSTRAINT revision_file_revision_id_fkey;
ALTER TABLE revision_category DROP CONSTRAINT revision_category_revision_id_fkey;

CREATE FUNCTION delete_revision_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM revision_xml WHERE revision_id IN (SELECT revision_id FROM gone);
    DELETE FROM fragment WHERE revision_id IN (SELECT revision_id FROM gone);
    DELETE FROM prerequisite WHERE revision_id IN (SELECT revision_id FROM gone);
    DELETE FROM bundle_member WHERE revision_id IN (SELECT revision_id FROM gone);
    DELETE FROM supersedence WHERE revision_id IN (SELECT revision_id FROM gone);
    DELETE FROM revision_file WHERE revision_id IN (SELECT revision_id FROM gone);
    DELETE FROM revision_category WHERE revision_id IN (SELECT revision_id FROM gone);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION delete_revision_children() IS
    'ON DELETE CASCADE for the tables whose rows only wsus-store writes, with their revision (migration 0010): deletes the rows of the deleted revisions, once per statement.';

CREATE TRIGGER revision_children_deleted AFTER DELETE ON revision
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION delete_revision_children();

CREATE FUNCTION truncate_revision_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE revision_xml, fragment, prerequisite, bundle_member, supersedence, revision_file, revision_category;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION truncate_revision_children() IS
    'TRUNCATE revision empties the tables whose rows belong to revisions, as TRUNCATE … CASCADE did through the foreign keys (migration 0010).';

CREATE TRIGGER revision_children_truncated AFTER TRUNCATE ON revision
    FOR EACH STATEMENT EXECUTE FUNCTION truncate_revision_children();
