//! brokertui: a broker that runs interactive programs in PTYs and relays messages between
//! them, with a TUI and an HTTP API in front. See `docs/architecture.md` for the picture.

pub mod b64;
pub mod broker;
pub mod protocol;
pub mod requests;
pub mod worker;
pub mod config;
pub mod ui;
