//! Trust policies: the `trust-policies/` file format (POLICY.md), loaded strictly and compiled.
