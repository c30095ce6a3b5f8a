//! Console output shared by the runnable examples: `== headings`, `label  value` lines with
//! indented JSON, and the display-only decoding of a JWT's parts.
#![allow(dead_code)]

use anyhow::{Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// The label column of [`field`] and [`print_json`].
pub const LABEL_WIDTH: usize = 18;

pub fn heading(title: &str) {
    println!("\n== {title}");
}

/// One labelled line of output.
pub fn field(label: &str, value: impl std::fmt::Display) {
    field_w(LABEL_WIDTH, label, value);
}

pub fn field_w(width: usize, label: &str, value: impl std::fmt::Display) {
    println!("{label:<width$} {value}");
}

/// Pretty JSON under a label, continuation lines indented to the value column.
pub fn print_json(label: &str, value: &Value) {
    print_json_w(LABEL_WIDTH, label, value);
}

pub fn print_json_w(width: usize, label: &str, value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let indent = format!("\n{:width$} ", "");
    field_w(width, label, text.replace('\n', &indent));
}

/// Part `index` (0 header, 1 payload) of a compact JWS, decoded without verifying anything:
/// display only.
pub fn jwt_part(token: &str, index: usize) -> Result<Value> {
    let part = token.split('.').nth(index).context("not a compact JWS")?;
    let bytes = URL_SAFE_NO_PAD.decode(part).context("base64url")?;
    Ok(serde_json::from_slice(&bytes)?)
}
