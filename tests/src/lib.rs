//! Cross-crate end-to-end tests for ntx-escrow live in `tests/tests/`.
