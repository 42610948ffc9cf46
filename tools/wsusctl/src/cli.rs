//! The command line: `wsusctl [--url URL] [--token TOKEN] [--json] <noun> <verb> ...`.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "wsusctl", version, about = "Administers a WSUS server through its management API")]
pub struct Cli {
    /// Base URL of the management API (the reporting service).
    #[arg(long, env = "WSUS_API_URL", default_value = "http://localhost:8080", global = true)]
    pub url: String,
    /// Bearer token (an admin or reader token of WSUS_API_TOKENS).
    #[arg(long, env = "WSUS_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A PEM root certificate to trust for an https:// URL, besides the system roots
    /// (reporting serving the API over TLS with a certificate of an internal CA).
    #[arg(long, env = "WSUS_API_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Client computers and their update status.
    #[command(subcommand)]
    Computers(Computers),
    /// Target groups and their members.
    #[command(subcommand)]
    Groups(Groups),
    /// Updates: search, details, approvals, declines.
    #[command(subcommand)]
    Updates(Updates),
    /// License terms of updates.
    #[command(subcommand)]
    Eula(Eula),
    /// Automatic approval rules.
    #[command(subcommand)]
    Rules(Rules),
    /// Administrator settings.
    #[command(subcommand)]
    Settings(Settings),
    /// Synchronisation with the upstream server.
    #[command(subcommand)]
    Sync(Sync),
    /// Status summaries.
    #[command(subcommand)]
    Reports(Reports),
    /// Cleanup of declined, superseded and obsolete updates, content, computers and history.
    #[command(subcommand)]
    Cleanup(Cleanup),
    /// Downstream servers that roll up to this one.
    DownstreamServers(PageArgs),
    /// Publish a package: a Software Distribution Package definition and the installer it
    /// runs (signed in a Cabinet by the server); publishing its PackageID again makes a
    /// new revision.
    Publish {
        /// The definition (SDP XML).
        definition: std::path::PathBuf,
        /// The installer (MSI, EXE or MSP) the definition runs; leave it out to publish
        /// metadata only.
        #[arg(long)]
        installer: Option<std::path::PathBuf>,
    },
    /// Published packages and the signing certificate.
    #[command(subcommand)]
    Publishing(Publishing),
    /// Where administrators are told what changed, and what was sent.
    #[command(subcommand)]
    Notifications(Notifications),
}

#[derive(Debug, Subcommand)]
pub enum Notifications {
    /// The channels.
    Channels,
    /// Add a channel.
    Add {
        name: String,
        /// webhook (JSON, signed when --secret-env is given), slack, teams or email.
        #[arg(long)]
        kind: String,
        /// The incoming webhook's URL, or for e-mail the recipients (comma-separated).
        #[arg(long, required_unless_present = "url_env", conflicts_with = "url_env")]
        url: Option<String>,
        /// Instead of --url: reporting's environment variable (WSUS_NOTIFY_URL_<NAME>, from
        /// a Secret) holding the webhook's URL, so the URL is not stored.
        #[arg(long)]
        url_env: Option<String>,
        /// Events, comma-separated: updates_synchronized, sync_failed, cleanup_failed,
        /// status_summary, installs_failed, downstream_silent, certificate_expiring.
        #[arg(long, value_delimiter = ',', default_value = "updates_synchronized,sync_failed,cleanup_failed")]
        events: Vec<String>,
        /// reporting's environment variable holding the webhook's HMAC key.
        #[arg(long)]
        secret_env: Option<String>,
    },
    /// Remove a channel.
    Remove { channel_id: uuid::Uuid },
    /// Send a test notification to a channel.
    Test { channel_id: uuid::Uuid },
    /// The newest notifications and how their delivery went.
    List,
    /// Show the notification settings, or change those given.
    Settings {
        /// How often the status summary is sent: never, day or week.
        #[arg(long)]
        summary: Option<String>,
        /// The hour it is sent (UTC, 0..23).
        #[arg(long)]
        hour: Option<u32>,
        /// For a weekly summary, the day: 1 Monday … 7 Sunday.
        #[arg(long)]
        weekday: Option<u32>,
        /// The summary counts computers not reported for this many days.
        #[arg(long)]
        not_reported_days: Option<u32>,
        /// Tell of a downstream server that has not rolled up for this many hours.
        #[arg(long)]
        rollup_silent_hours: Option<u32>,
        /// The messages' language: en, de or fr.
        #[arg(long)]
        language: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Publishing {
    /// Packages published here.
    List,
    /// Expire a published package: no client is offered it any more.
    Expire { update_id: uuid::Uuid },
    /// Delete an unapproved published package.
    Delete { update_id: uuid::Uuid },
    /// The signing certificate; with --pem, the certificate itself to distribute to clients.
    Certificate {
        #[arg(long)]
        pem: bool,
    },
    /// Generate a self-signed signing certificate (replacing a generated one).
    GenerateCertificate {
        /// Its common name (default "WSUS Publishers Self-signed").
        #[arg(long)]
        name: Option<String>,
        /// Validity in days (default 1095).
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Debug, Args, Default)]
pub struct PageArgs {
    /// Fetch every page, not only the first.
    #[arg(long)]
    pub all: bool,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ComputerFilter {
    /// A group (id or name): its members and those of its subgroups.
    #[arg(long)]
    pub group: Option<String>,
    /// up_to_date, needs_updates, with_errors or not_reported.
    #[arg(long)]
    pub state: Option<String>,
    /// Part of the name or id.
    #[arg(long)]
    pub search: Option<String>,
    /// Only computers rolled up from this downstream server (id).
    #[arg(long)]
    pub downstream_server: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Subcommand)]
pub enum Computers {
    /// List computers.
    List(ComputerFilter),
    /// One computer.
    Show { computer: String },
    /// A computer's per-update statuses.
    Updates {
        computer: String,
        /// Installed, Needed, Downloaded, Failed, InstalledPendingReboot, NotApplicable or Unknown.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Forget a computer.
    Delete { computer: String },
}

#[derive(Debug, Subcommand)]
pub enum Groups {
    /// List groups as a tree.
    List,
    /// Create a group (under All Computers unless --parent).
    Create {
        name: String,
        #[arg(long)]
        parent: Option<String>,
    },
    /// Rename a group.
    Rename { group: String, name: String },
    /// Nest a group under another.
    Move { group: String, parent: String },
    /// Delete a group, its subgroups and their approvals.
    Delete { group: String },
    /// Put computers in a group.
    Add {
        group: String,
        #[arg(required = true)]
        computers: Vec<String>,
    },
    /// Take a computer out of a group.
    Remove { group: String, computer: String },
    /// Computers in a group and its subgroups.
    Members {
        group: String,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum Updates {
    /// Search updates.
    List {
        /// Part of the title or KB number.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        kb: Option<String>,
        #[arg(long)]
        classification: Option<String>,
        #[arg(long)]
        product: Option<String>,
        /// approved, unapproved or declined.
        #[arg(long)]
        approval: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One update (id or KB number) with its approvals and status counts.
    Show {
        update: String,
        #[arg(long)]
        group: Option<String>,
    },
    /// Approve an update for a group.
    Approve {
        update: String,
        #[arg(long)]
        group: String,
        /// Install or Uninstall.
        #[arg(long, default_value = "Install")]
        action: String,
        /// Install by this time (RFC 3339, e.g. 2026-12-24T18:00:00Z).
        #[arg(long)]
        deadline: Option<String>,
        /// Accept the update's license terms.
        #[arg(long)]
        accept_eula: bool,
    },
    /// Remove a group's own approval (it inherits its parent's again).
    Unapprove {
        update: String,
        #[arg(long)]
        group: String,
    },
    /// Decline an update: no computer is offered it, and cleanup may remove it.
    Decline { update: String },
    /// Take a decline back.
    Undecline { update: String },
}

#[derive(Debug, Subcommand)]
pub enum Eula {
    /// Print an update's license terms.
    Show {
        update: String,
        #[arg(long)]
        language: Option<String>,
    },
    /// Accept an update's license terms.
    Accept { update: String },
}

#[derive(Debug, Subcommand)]
pub enum Rules {
    /// List the automatic approval rules.
    List,
    /// Create a rule: updates in any --classification AND any --product are approved for each --group.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "classification")]
        classifications: Vec<String>,
        #[arg(long = "product")]
        products: Vec<String>,
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
        /// Deadline this many hours after each approval.
        #[arg(long)]
        deadline_hours: Option<i32>,
        #[arg(long)]
        disabled: bool,
    },
    /// Delete a rule (the approvals it made stay).
    Delete { rule: String },
    /// Apply rules now.
    Apply {
        #[arg(long)]
        rule: Option<String>,
        /// Over the whole catalog, not only new revisions.
        #[arg(long)]
        everything: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Settings {
    /// Show every setting.
    #[command(alias = "get")]
    Show,
    /// Change settings; the others stay.
    Set {
        /// Comma-separated product ids (empty = all).
        #[arg(long)]
        products: Option<String>,
        /// Comma-separated classification ids (empty = all).
        #[arg(long)]
        classifications: Option<String>,
        /// Comma-separated language short names, e.g. en,de.
        #[arg(long)]
        languages: Option<String>,
        #[arg(long)]
        syncs_per_day: Option<u32>,
        /// lazy, immediate or catalog-only.
        #[arg(long)]
        content_mode: Option<String>,
        /// server or client.
        #[arg(long)]
        targeting: Option<String>,
        #[arg(long)]
        event_days: Option<u32>,
        #[arg(long)]
        sync_history_days: Option<u32>,
        #[arg(long)]
        stale_computer_days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Sync {
    /// Start a synchronisation.
    Start {
        /// Wait for it to finish, showing progress; exit 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// The upstream server, the schedule and the running or last synchronisation.
    Status,
    /// Past synchronisations, newest first.
    History(PageArgs),
}

#[derive(Debug, Subcommand)]
pub enum Reports {
    /// Status counts per update.
    Updates {
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Status counts per computer.
    Computers(ComputerFilter),
}

#[derive(Debug, Subcommand)]
pub enum Cleanup {
    /// Start a cleanup run.
    Start {
        /// Wait for it to finish; exit 1 if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// Past runs and what they removed.
    Runs(PageArgs),
}
