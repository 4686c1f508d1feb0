//! brokertui.toml and -w NAME=CMD.
