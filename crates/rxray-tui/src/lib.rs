//! rxray's terminal dashboard (`rxray top`): a plain snapshot model of what the engine knows, the
//! panes that render it, the keys that steer it, and the terminal guard that always restores the screen.
//!
//! The shape: a `Feed` (the live kernel, or an agent) fills a `Collector`, which turns engine types
//! into a `Snapshot`; `view::draw` renders a snapshot under the `App`'s view state. Rendering reads
//! nothing but the snapshot, so every pane is tested from fixed snapshots with ratatui's `TestBackend`.
pub mod app;
pub mod collect;
pub mod model;
pub mod run;
pub mod term;
pub mod view;

pub use app::{App, Pane};
pub use collect::Collector;
pub use model::Snapshot;
