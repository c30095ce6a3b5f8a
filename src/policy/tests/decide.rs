//! `exchange::decide` tests (placeholder).
