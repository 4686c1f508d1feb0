//! brokertui: a broker that runs interactive programs in PTYs and relays messages between
//! them, with a TUI and an HTTP API in front. See `docs/architecture.md` for the picture.

pub mod api;
pub mod b64;
pub mod broker;
pub mod config;
pub mod protocol;
pub mod requests;
pub mod ui;
pub mod worker;
pub mod client;
pub mod stack;
pub mod serve;
pub mod app;
pub mod mirror;
