//! `ntx`: the ntx-escrow command-line tool.
fn main() {}
