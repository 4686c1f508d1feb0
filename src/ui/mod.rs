//! The TUI's drawing: panes, status bar, popups. `draw` only reads state.

pub mod keys;
pub mod pane;
