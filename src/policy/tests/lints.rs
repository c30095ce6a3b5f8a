//! Lint tests (placeholder).
