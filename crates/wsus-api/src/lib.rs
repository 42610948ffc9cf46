//! The management API's contract (`/api/v1`): every request body, answer and query
//! string, as reporting serves them and `wsusctl` reads them. The OpenAPI document is
//! derived from these types, so the document, the server and the client cannot disagree.
//!
//! Answers always carry every property (a missing value is `null`); request bodies may
//! leave out what has a default.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

mod computers;
mod groups;
mod notifications;
mod publishing;
mod reports;
mod rules;
mod settings;
mod sync;
mod updates;

pub use computers::*;
pub use groups::*;
pub use notifications::*;
pub use publishing::*;
pub use reports::*;
pub use rules::*;
pub use settings::*;
pub use sync::*;
pub use updates::*;

/// What every failure answers, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Error {
    pub error: String,
}

/// One page of a list, in a stable order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
