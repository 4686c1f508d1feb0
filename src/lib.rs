//! brokertui: a broker that runs interactive programs in PTYs and relays messages between
//! them, with a TUI and an HTTP API in front. See `docs/architecture.md` for the picture.

pub mod agent;
pub mod api;
pub mod app;
pub mod b64;
pub mod backend;
pub mod broker;
pub mod client;
pub mod config;
pub mod deadline;
pub mod fsutil;
pub mod mirror;
pub mod pane_modes;
pub mod protocol;
pub mod sched;
pub mod serve;
pub mod stack;
pub mod teardown;
pub mod ui;
pub mod worker;
pub mod workspace;
