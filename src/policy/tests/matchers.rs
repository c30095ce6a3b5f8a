//! Matcher tests (placeholder).
