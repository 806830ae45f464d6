//! The profile catalog: every device profile the gateway knows, loaded from directories and
//! checked by the common loader and by the adapter of each profile's protocol.

mod catalog;
mod schema;

pub use catalog::{Catalog, Finding, Severity};
pub use schema::schema_document;
