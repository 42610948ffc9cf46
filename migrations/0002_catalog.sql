-- The update catalog (MS-WUSP 3.1.1 Revision, Metadata, Prerequisite, Bundle and Driver
-- tables; MS-WSUSSS 3.1.1 Revision, Categories, Classifications, Detectoids and EULAs).
-- A reference to an update that is not in the catalog is stored unresolved (a GUID,
-- not a foreign key), never rejected: real catalogs are not closed.

CREATE TABLE revision (
    revision_id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    update_id         uuid        NOT NULL,
    revision_number   integer     NOT NULL,
    update_type       text        NOT NULL CHECK (update_type IN ('Software', 'Category', 'Detectoid', 'Driver')),
    category_type     text,
    publication_state text        NOT NULL DEFAULT 'Published',
    is_leaf           boolean     NOT NULL DEFAULT true,
    is_bundle         boolean     NOT NULL DEFAULT false,
    eula_id           uuid,
    secured_fragment  text,
    default_language  text,
    creation_date     timestamptz,
    imported_at       timestamptz NOT NULL DEFAULT now(),
    changed_version   bigint      NOT NULL,
    UNIQUE (update_id, revision_number)
);
COMMENT ON TABLE revision IS
    'One row per update revision (UpdateID, RevisionNumber) on this server: software, drivers, categories (companies, product families, products, classifications) and detectoids.';
COMMENT ON COLUMN revision.revision_id IS
    'The server-local RevisionID clients use on the wire (int32). Assigned once from an identity sequence: never reused, stable across restarts.';
COMMENT ON COLUMN revision.update_type IS '/Update/Properties/@UpdateType.';
COMMENT ON COLUMN revision.category_type IS
    '/Update/HandlerSpecificData/CategoryInformation/@CategoryType for categories: Company, ProductFamily, Product or UpdateClassification; NULL when absent (real documents may omit it).';
COMMENT ON COLUMN revision.publication_state IS '/Update/Properties/@PublicationState: Published or Expired.';
COMMENT ON COLUMN revision.is_leaf IS
    'Derived by the catalog: false when some revision names this UpdateID as a prerequisite (IsLeaf of MS-WUSP SyncUpdates). Bundle members are leaves.';
COMMENT ON COLUMN revision.is_bundle IS 'Derived: the revision bundles other revisions (has bundle_member rows).';
COMMENT ON COLUMN revision.eula_id IS '/Update/Properties/@EulaID; installing needs the EULA accepted (accepted_eula).';
COMMENT ON COLUMN revision.secured_fragment IS
    'MS-WSUSSS FragmentType, /Update/Properties/SecuredFragment: FileDecryption means the files need GetUpdateDecryptionData, FileURL marks secure URLs.';
COMMENT ON COLUMN revision.default_language IS '/Update/Properties/@DefaultPropertiesLanguage.';
COMMENT ON COLUMN revision.creation_date IS '/Update/Properties/@CreationDate: when Microsoft published the revision.';
COMMENT ON COLUMN revision.changed_version IS
    'catalog_state.version of the last change to this row: MS-WSUSSS LastChangedAnchor, so GetRevisionIdList can list what changed since an anchor.';
CREATE INDEX revision_changed_version ON revision (changed_version);
CREATE INDEX revision_update_type ON revision (update_type, category_type);

CREATE TABLE revision_xml (
    revision_id  integer PRIMARY KEY REFERENCES revision ON DELETE CASCADE,
    sha256       bytea   NOT NULL CHECK (octet_length(sha256) = 32),
    compression  text    NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'zstd', 'lz4')),
    body         bytea   NOT NULL
);
COMMENT ON TABLE revision_xml IS
    'The full msus/2002/12/Update document as received (UTF-8), kept so fragments can be derived again and GetUpdateData can serve it to downstream servers.';
COMMENT ON COLUMN revision_xml.sha256 IS 'SHA-256 of the uncompressed document: an import of the same document changes nothing.';
COMMENT ON COLUMN revision_xml.compression IS 'How body is compressed by the application; none leaves it to TOAST.';

CREATE TABLE fragment (
    revision_id  integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    kind         text    NOT NULL CHECK (kind IN ('Core', 'Extended', 'LocalizedProperties', 'Eula')),
    locale       text    NOT NULL DEFAULT '',
    compression  text    NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'zstd', 'lz4')),
    body         bytea   NOT NULL,
    PRIMARY KEY (revision_id, kind, locale)
);
COMMENT ON TABLE fragment IS
    'Metadata fragments derived from revision_xml as MS-WUSP 3.1.1.1 specifies (the Metadata Table). Core goes into SyncUpdates, the others into GetExtendedUpdateInfo.';
COMMENT ON COLUMN fragment.locale IS 'Language for LocalizedProperties and Eula fragments; empty string for Core and Extended.';
COMMENT ON COLUMN fragment.body IS 'The fragment text (UTF-8, not escaped), compressed as compression says.';

CREATE TABLE prerequisite (
    revision_id  integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    clause       integer NOT NULL,
    update_id    uuid    NOT NULL,
    is_category  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (revision_id, clause, update_id)
);
COMMENT ON TABLE prerequisite IS
    'Prerequisites in conjunctive normal form (MS-WUSP Prerequisite Table): rows of one clause are ORed, clauses are ANDed. update_id means the highest revision of that update and may be absent from the catalog (unresolved).';
COMMENT ON COLUMN prerequisite.clause IS 'Position of the AND clause within the revision; a bare UpdateIdentity is a clause of its own.';
COMMENT ON COLUMN prerequisite.is_category IS 'From AtLeastOne/@IsCategory: the clause names products or classifications the update belongs to.';
CREATE INDEX prerequisite_update_id ON prerequisite (update_id);

CREATE TABLE bundle_member (
    revision_id             integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    clause                  integer NOT NULL,
    member_update_id        uuid    NOT NULL,
    member_revision_number  integer NOT NULL,
    PRIMARY KEY (revision_id, clause, member_update_id, member_revision_number)
);
COMMENT ON TABLE bundle_member IS
    'Bundled revisions (MS-WUSP Bundle Table), CNF like prerequisites, each naming an exact revision that may be absent from the catalog (unresolved).';
CREATE INDEX bundle_member_member ON bundle_member (member_update_id, member_revision_number);

CREATE TABLE supersedence (
    revision_id           integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    superseded_update_id  uuid    NOT NULL,
    PRIMARY KEY (revision_id, superseded_update_id)
);
COMMENT ON TABLE supersedence IS
    '/Update/Relationships/SupersededUpdates: this revision supersedes every revision of superseded_update_id (which may be absent from the catalog).';
CREATE INDEX supersedence_superseded ON supersedence (superseded_update_id);

CREATE TABLE revision_category (
    revision_id         integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    category_update_id  uuid    NOT NULL,
    via_bundle          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (revision_id, category_update_id)
);
COMMENT ON TABLE revision_category IS
    'Derived by the catalog: the products and classifications (category updates) a revision belongs to, directly through IsCategory prerequisites or through a bundle that contains it. Used by the product / classification filters of both protocols.';
COMMENT ON COLUMN revision_category.via_bundle IS 'True when the membership comes only from a bundle that contains this revision.';
CREATE INDEX revision_category_category ON revision_category (category_update_id);

CREATE TABLE file (
    sha1              bytea       PRIMARY KEY CHECK (octet_length(sha1) = 20),
    sha256            bytea       CHECK (octet_length(sha256) = 32),
    size              bigint      NOT NULL CHECK (size >= 0),
    file_name         text        NOT NULL,
    modified          timestamptz,
    patching_type     text,
    mu_url            text,
    is_encrypted      boolean     NOT NULL DEFAULT false,
    decryption_key    bytea,
    content_state     text        NOT NULL DEFAULT 'absent'
                      CHECK (content_state IN ('absent', 'queued', 'downloading', 'present', 'failed', 'quarantined')),
    content_changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE file IS
    'Content files, addressed by SHA-1 as WSUS names them (/Content/<last two hex>/<SHA1HEX>.<ext>). One row per distinct file however many revisions carry it.';
COMMENT ON COLUMN file.sha1 IS 'File/@Digest decoded (20 bytes).';
COMMENT ON COLUMN file.sha256 IS 'File/AdditionalDigest[@Algorithm=SHA256] decoded; Windows 8 and later refuse content without a matching one.';
COMMENT ON COLUMN file.file_name IS 'File/@FileName as first seen; its extension names the file in the content store.';
COMMENT ON COLUMN file.mu_url IS 'Where Microsoft Update serves the file (MS-WSUSSS ServerSyncUrlData MUUrl), NULL when it has no Internet location.';
COMMENT ON COLUMN file.decryption_key IS 'For encrypted files: the key from GetUpdateDecryptionData.';
COMMENT ON COLUMN file.content_state IS
    'absent: not stored and not wanted yet; queued / downloading: in content_download; present: stored and SHA-1 and SHA-256 verified, servable; failed: last download failed; quarantined: bytes did not match the digests.';

CREATE TABLE revision_file (
    revision_id  integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    sha1         bytea   NOT NULL REFERENCES file,
    ordinal      integer NOT NULL,
    PRIMARY KEY (revision_id, sha1)
);
COMMENT ON TABLE revision_file IS 'The files of a revision, in document order (ordinal).';
CREATE INDEX revision_file_sha1 ON revision_file (sha1);

CREATE TABLE content_download (
    sha1             bytea       PRIMARY KEY REFERENCES file ON DELETE CASCADE,
    reason           text        NOT NULL CHECK (reason IN ('approved', 'immediate', 'downstream', 'client_miss')),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text
);
COMMENT ON TABLE content_download IS
    'The download queue sync-worker works through: files of approved updates (lazy content), every file (immediate content), files a downstream server asked for (DownloadFiles), files a client asked for and missed.';
CREATE INDEX content_download_next ON content_download (next_attempt_at);

CREATE TABLE driver (
    revision_id         integer     NOT NULL REFERENCES revision ON DELETE CASCADE,
    hardware_id         text        NOT NULL,
    driver_ver_date     date,
    driver_ver_version  bigint,
    class               text,
    manufacturer        text,
    provider            text,
    model               text,
    whql_driver_id      text,
    PRIMARY KEY (revision_id, hardware_id)
);
COMMENT ON TABLE driver IS
    'MS-WUSP Driver Table: /Update/ApplicabilityRules/Metadata/WindowsDriverMetaData of driver revisions, one row per HardwareID.';
COMMENT ON COLUMN driver.hardware_id IS 'Device hardware id the driver supports; matched case-insensitively against SystemSpec.';
COMMENT ON COLUMN driver.driver_ver_version IS 'DriverVerVersion a.b.c.d packed into 64 bits (16 bits each) so versions compare as integers.';
COMMENT ON COLUMN driver.whql_driver_id IS 'Certification submission id; higher is more recent.';
CREATE INDEX driver_hardware_id ON driver (lower(hardware_id));

CREATE TABLE driver_feature_score (
    revision_id       integer  NOT NULL REFERENCES revision ON DELETE CASCADE,
    hardware_id       text     NOT NULL,
    operating_system  text     NOT NULL,
    feature_score     smallint NOT NULL CHECK (feature_score BETWEEN 0 AND 255),
    PRIMARY KEY (revision_id, hardware_id, operating_system)
);
COMMENT ON TABLE driver_feature_score IS
    'MS-WUSP Driver FeatureScore Table; operating_system is [Arch].[Major].[Minor] as in FeatureScoreMatchingKey; lower scores rank better.';

CREATE TABLE driver_computer_hardware_id (
    revision_id           integer NOT NULL REFERENCES revision ON DELETE CASCADE,
    hardware_id           text    NOT NULL,
    kind                  text    NOT NULL CHECK (kind IN ('distribution', 'target')),
    computer_hardware_id  uuid    NOT NULL,
    PRIMARY KEY (revision_id, hardware_id, kind, computer_hardware_id)
);
COMMENT ON TABLE driver_computer_hardware_id IS
    'MS-WUSP Driver Distribution / Target ComputerHardwareID Tables: the computer models (SMBIOS-derived GUIDs) a driver is targeted to, at distribution level or in the INF.';

CREATE TABLE accepted_eula (
    eula_id          uuid        PRIMARY KEY,
    accepted_at      timestamptz NOT NULL DEFAULT now(),
    accepted_by      text,
    changed_version  bigint      NOT NULL
);
COMMENT ON TABLE accepted_eula IS
    'EULAs the administrator of this server (or, in replica mode, of an upstream one) accepted (MS-WSUSSS EULAs Table, Accepted = a row exists).';

CREATE TABLE declined_update (
    update_id        uuid        PRIMARY KEY,
    declined_at      timestamptz NOT NULL DEFAULT now(),
    declined_by      text,
    changed_version  bigint      NOT NULL
);
COMMENT ON TABLE declined_update IS
    'Declined ("hidden") updates: never offered to clients, listed in GetDeployments HiddenUpdates. Keyed by UpdateID so every revision is declined.';
