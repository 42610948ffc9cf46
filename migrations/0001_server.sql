-- Server identity, administrator settings and the catalog version.
-- Migrations follow expand-then-contract: a release only adds (tables, nullable or
-- defaulted columns, indexes); removing or renaming waits until no running release
-- reads the old shape. See migrations/README.md.

CREATE TABLE server_identity (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    server_id   uuid        NOT NULL,
    fqdn        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE server_identity IS
    'The one identity of this server, used by both protocols (MS-WSUSSS ServerID, the issuer of cookies). Created on first start from WSUS_SERVER_ID / WSUS_SERVER_FQDN or generated; the start that creates it also seeds admin_setting.';
COMMENT ON COLUMN server_identity.singleton IS 'Always true: at most one row.';

CREATE TABLE admin_setting (
    key         text PRIMARY KEY,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);
COMMENT ON TABLE admin_setting IS
    'Administrator settings (products, classifications, schedule, content mode, client configuration...), one JSON value per key. Seeded from the environment on first start, then changed only through the management API. Known keys and their types live in wsus-store (settings module).';
COMMENT ON COLUMN admin_setting.updated_at IS
    'Last change. For key client_config this is the MS-WUSP GetConfig LastChange: changing it makes clients fetch the configuration again (ConfigChanged).';
COMMENT ON COLUMN admin_setting.updated_by IS 'Who changed it: an API token role or "seed".';

CREATE TABLE catalog_state (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint      NOT NULL DEFAULT 1,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE catalog_state IS
    'The catalog version: bumped in the same transaction as every change to revisions, deployments, declines, EULA acceptance or groups. Gateways compare it to their in-memory index; the NOTIFY on channel wsus_catalog tells them early. Updating this one row also serialises catalog writers, so versions commit in order and can serve as anchors.';
INSERT INTO catalog_state (singleton) VALUES (true);

CREATE FUNCTION wsus_bump_catalog_version() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE v bigint;
BEGIN
    UPDATE catalog_state SET version = version + 1, changed_at = now() RETURNING version INTO v;
    PERFORM pg_notify('wsus_catalog', v::text);
    RETURN v;
END $$;
COMMENT ON FUNCTION wsus_bump_catalog_version() IS
    'Call inside the transaction that changes the catalog; returns the new version to stamp the changed rows with. The notification is delivered at commit.';

CREATE FUNCTION wsus_notify_setting_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wsus_settings', COALESCE(NEW.key, OLD.key));
    RETURN NULL;
END $$;
CREATE TRIGGER admin_setting_notify AFTER INSERT OR UPDATE OR DELETE ON admin_setting
    FOR EACH ROW EXECUTE FUNCTION wsus_notify_setting_change();

CREATE TABLE language (
    lcid        integer PRIMARY KEY,
    short_name  text    NOT NULL UNIQUE,
    long_name   text    NOT NULL,
    enabled     boolean NOT NULL DEFAULT false,
    changed_version bigint NOT NULL DEFAULT 1
);
COMMENT ON TABLE language IS
    'Languages known to this server (MS-WSUSSS ServerSyncLanguageData). LCID 0 "all" is the All Languages flag: when enabled, the specific flags are ignored.';
COMMENT ON COLUMN language.short_name IS 'The language as update metadata names it (LocalizedProperties/Language), e.g. en, pt-br.';
COMMENT ON COLUMN language.enabled IS 'Whether updates and localized metadata in this language are synchronised and served.';
COMMENT ON COLUMN language.changed_version IS 'catalog_state.version when the flag last changed; GetConfigData sends only languages changed since the config anchor.';
-- The list a real Windows Server 2025 WSUS announces (GetConfigData), English enabled as its setup does.
INSERT INTO language (lcid, short_name, long_name, enabled) VALUES
    (0, 'all', 'all', false),
    (1025, 'ar', 'Arabic', false),
    (1026, 'bg', 'Bulgarian', false),
    (1028, 'zh-tw', 'Chinese (Traditional)', false),
    (1029, 'cs', 'Czech', false),
    (1030, 'da', 'Danish', false),
    (1031, 'de', 'German', false),
    (1032, 'el', 'Greek', false),
    (1033, 'en', 'English', true),
    (1034, 'es', 'Spanish', false),
    (1035, 'fi', 'Finnish', false),
    (1036, 'fr', 'French', false),
    (1037, 'he', 'Hebrew', false),
    (1038, 'hu', 'Hungarian', false),
    (1040, 'it', 'Italian', false),
    (1041, 'ja', 'Japanese', false),
    (1042, 'ko', 'Korean', false),
    (1043, 'nl', 'Dutch', false),
    (1044, 'no', 'Norwegian', false),
    (1045, 'pl', 'Polish', false),
    (1046, 'pt-br', 'Portuguese (Brazil)', false),
    (1048, 'ro', 'Romanian', false),
    (1049, 'ru', 'Russian', false),
    (1050, 'hr', 'Croatian', false),
    (1051, 'sk', 'Slovak', false),
    (1053, 'sv', 'Swedish', false),
    (1054, 'th', 'Thai', false),
    (1055, 'tr', 'Turkish', false),
    (1058, 'uk', 'Ukrainian', false),
    (1060, 'sl', 'Slovenian', false),
    (1061, 'et', 'Estonian', false),
    (1062, 'lv', 'Latvian', false),
    (1063, 'lt', 'Lithuanian', false),
    (1081, 'hi', 'Hindi', false),
    (2052, 'zh-cn', 'Chinese (Simplified)', false),
    (2070, 'pt', 'Portuguese (Portugal)', false),
    (2074, 'sr', 'Serbian (Latin)', false),
    (3076, 'zh-hk', 'Chinese (Hong Kong SAR)', false),
    (66577, 'ja-nec', 'Japanese NEC', false);
