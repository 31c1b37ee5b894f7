//! rxray's agent: the one long-lived owner of a host's interfaces. It runs one live source, the
//! engine and every sink (metrics, joined commands, later the store and exporters); each sink plugs
//! in as one more consumer of the agent's snapshots and events.
pub mod config;
pub mod metrics;
pub mod serve;
