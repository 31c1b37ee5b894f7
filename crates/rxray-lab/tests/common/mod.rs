//! Shared helpers for rxray-lab's integration tests (the crate's own `testing` module).
#![allow(unused_imports)]
pub use rxray_lab::testing::{have, is_root, skip_or_fail, unique_name, TempDir};
