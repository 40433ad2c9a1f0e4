//! The working-day calendar years the workflow knows: the shipped files and those in the
//! calendars directory (`--calendars-dir` / `JUNHENG_CALENDARS_DIR`, default
//! `deploy/calendars`). The loading lives in `junheng_edge::calendars`, shared with the
//! scheduler, so both read the same directory with the same validation.

pub use junheng_edge::calendars::{DEFAULT_DIR, load};
