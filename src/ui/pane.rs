//! Rendering a vt100 screen into a ratatui buffer.
