-- Local publishing: packages an administrator published here (third-party and in-house
-- updates), and the certificate their Cabinets are signed with when none is configured.

CREATE TABLE published_package (
    update_id        uuid        PRIMARY KEY,
    revision_number  integer     NOT NULL,
    vendor           text        NOT NULL,
    product          text        NOT NULL,
    title            text        NOT NULL,
    definition       text        NOT NULL,
    installer_name   text,
    file_sha1        bytea,
    file_sha256      bytea,
    file_name        text,
    file_size        bigint,
    file_modified    timestamptz,
    expired          boolean     NOT NULL DEFAULT false,
    published_by     text,
    first_published_at timestamptz NOT NULL DEFAULT now(),
    changed_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE published_package IS
    'Locally published packages, one row each at its newest revision; the revisions themselves are in revision like any other update.';
COMMENT ON COLUMN published_package.update_id IS 'The definition''s PackageID, which is the update''s id.';
COMMENT ON COLUMN published_package.revision_number IS 'The newest revision published (100 first, one more for each publication or expiry).';
COMMENT ON COLUMN published_package.definition IS 'The Software Distribution Package XML as published, kept to expire or revise it.';
COMMENT ON COLUMN published_package.installer_name IS 'The installer inside the signed Cabinet; NULL for a metadata-only publication.';
COMMENT ON COLUMN published_package.file_sha1 IS 'SHA-1 of the signed Cabinet (the file row); NULL for a metadata-only publication.';
COMMENT ON COLUMN published_package.file_modified IS 'The Cabinet''s File/@Modified, repeated in every later revision of the package (with its SHA-256, name and size).';
COMMENT ON COLUMN published_package.expired IS 'Expired: its newest revision says PublicationState Expired and it is declined, so no client is offered it.';

CREATE TABLE signing_certificate (
    id              integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    certificate_pem text        NOT NULL,
    key_pem         text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE signing_certificate IS
    'The code-signing certificate generated on request (self-signed) when none is configured (WSUS_SIGNING_CERTIFICATE_FILE): one row.';
COMMENT ON COLUMN signing_certificate.key_pem IS 'Its private key, PKCS#8 PEM. A configured certificate''s key is never stored here.';
