//! The TUI: [`state`] is plain data, [`draw`] renders it, [`input`] turns keys into changes
//! and actions; [`pane`] renders a vt100 screen, [`keys`] encodes keys as terminal bytes,
//! [`layout`] tiles panes, [`review`] is the diff review popup, [`copy`] copy mode and search. The loop that wires them to the broker is `crate::app`.

pub mod bells;
pub mod copy;
pub mod draw;
pub mod feed;
pub mod input;
pub mod keymap;
pub mod keys;
pub mod layout;
pub mod pane;
pub mod review;
pub mod state;
