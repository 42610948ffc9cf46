//! Update states as `update_status.status` stores them (MS-WSUSSS SummarizationState),
//! named from `wsus_status` so the SQL says which state it means.

use wsus_status::UpdateState;

pub(crate) const UNKNOWN: i16 = UpdateState::Unknown.summarization_state();
pub(crate) const NOT_APPLICABLE: i16 = UpdateState::NotApplicable.summarization_state();
pub(crate) const NEEDED: i16 = UpdateState::Needed.summarization_state();
pub(crate) const DOWNLOADED: i16 = UpdateState::Downloaded.summarization_state();
pub(crate) const INSTALLED: i16 = UpdateState::Installed.summarization_state();
pub(crate) const FAILED: i16 = UpdateState::Failed.summarization_state();
pub(crate) const INSTALLED_PENDING_REBOOT: i16 = UpdateState::InstalledPendingReboot.summarization_state();

/// The states of an update a computer still needs, as an SQL list: needed, downloaded,
/// or installed and waiting for a restart.
pub(crate) fn still_needed() -> String {
    format!("({NEEDED}, {DOWNLOADED}, {INSTALLED_PENDING_REBOOT})")
}

/// [`still_needed`], and failed: an update a computer has not got.
pub(crate) fn not_got() -> String {
    format!("({NEEDED}, {DOWNLOADED}, {FAILED}, {INSTALLED_PENDING_REBOOT})")
}
