//! Text from tokens and audit events, made safe to print on a terminal.
//!
//! A subject claim is any string its issuer signed, and an unverified token pasted into
//! `ferry policy explain` is any string at all. Printed raw, control characters (an ANSI escape
//! sequence, a carriage return, a newline that forges a row) and invisible format characters
//! could rewrite an operator's screen or make one value read as another. Every such character is
//! shown as a `\u{..}` escape instead, and a backslash is doubled, so an escape in the output
//! always stands for a character that was there; everything else is left as it is.
//!
//! JSON output (`--json`) is printed on terminals too, and JSON lets DEL, C1 and the format
//! characters stand raw inside strings (`serde_json` escapes only C0). [`json_safe`] writes those
//! as JSON's own `\uXXXX` escapes: the same JSON value for a parser, nothing for a terminal to
//! act on.

use std::borrow::Cow;

/// `text` with control characters (C0, DEL, C1), bidirectional and zero-width format
/// characters and line separators escaped, and backslashes doubled.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON with every character [`printable`] escapes, except JSON's own whitespace, written as a
/// JSON `\uXXXX` escape. In valid JSON such a character can only stand inside a string (C0
/// raw in a string, or any of them outside one, make it invalid), so the value is unchanged.
/// Tab, line feed and carriage return are left: valid JSON holds them only as whitespace between
/// tokens (`serde_json`'s pretty output). For JSON from anywhere else, use [`json_line`].
pub fn json_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(escaped_in_json) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 12);
    for c in json.chars() {
        if escaped_in_json(c) {
            // Every character escaped lies in the Basic Multilingual Plane: one `\uXXXX`.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text that should be one JSON value, for one line of output: valid JSON comes out as
/// [`json_safe`] with its whitespace between tokens made spaces, the same value on one line;
/// anything else comes out as `{"not_json": "<the text>"}`, still one valid JSON line (a
/// reader of JSON lines does not stop at it) that cannot pass for the value it almost was.
pub fn json_line(text: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        let wrapped = serde_json::json!({ "not_json": text }).to_string();
        return json_safe(&wrapped).into_owned();
    }
    json_safe(text).replace(['\t', '\n', '\r'], " ")
}

fn escaped_in_json(c: char) -> bool {
    needs_escape(c) && !matches!(c, '\t' | '\n' | '\r')
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on_and_nothing_else() {
        assert!(matches!(
            printable("repo:acme/api:ref:refs/heads/main"),
            Cow::Borrowed(_)
        ));
        assert_eq!(printable("héllo wörld ✓"), "héllo wörld ✓");
        assert_eq!(printable("x\u{1b}]0;owned\u{7}"), "x\\u{1b}]0;owned\\u{7}");
        assert_eq!(printable("a\nb\rc\td"), "a\\u{a}b\\u{d}c\\u{9}d");
        assert_eq!(printable("\u{7f}\u{9b}2J"), "\\u{7f}\\u{9b}2J");
        assert_eq!(printable("admin\u{202e}txt.exe"), "admin\\u{202e}txt.exe");
        assert_eq!(printable("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(printable("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        // A literal `\u{1b}` in the text cannot pass for an escaped ESC.
        assert_eq!(printable("\\u{1b}"), "\\\\u{1b}");
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_what_a_terminal_would_act_on() {
        let value = serde_json::json!({
            "sub": "admin\u{202e}txt\u{9b}2J\u{7f}\u{1b}",
            "note": "a \\u{1b} that is text, é ✓",
        });
        let raw = value.to_string();
        assert!(
            raw.contains('\u{202e}') && raw.contains('\u{9b}'),
            "serde_json leaves them raw"
        );
        let safe = json_safe(&raw);
        assert!(!safe.chars().any(needs_escape), "{safe}");
        assert!(safe.contains("\\u202e") && safe.contains("\\u009b") && safe.contains("\\u007f"));
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
        assert!(matches!(
            json_safe(r#"{"sub":"repo:acme/api"}"#),
            Cow::Borrowed(_)
        ));
        // Pretty JSON keeps its layout.
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let safe = json_safe(&pretty);
        assert_eq!(safe.lines().count(), pretty.lines().count());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
    }

    #[test]
    fn a_json_line_is_one_line_of_the_same_value_or_escaped_text() {
        let value = serde_json::json!({ "sub": "a\u{2028}b\u{85}c", "n": [1, 2] });
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let line = json_line(&pretty);
        assert!(!line.chars().any(needs_escape), "{line:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line).unwrap(),
            value
        );
        // Not JSON: one JSON line that holds the text, escaped, and is not the value the text
        // almost was (a bad escape must not come out as a good one).
        assert_eq!(
            json_line("x\u{1b}[2J\r{\"a\":1}"),
            r#"{"not_json":"x\u001b[2J\r{\"a\":1}"}"#
        );
        assert_eq!(
            json_line("{\"broken\":\u{202e}"),
            r#"{"not_json":"{\"broken\":\u202e"}"#
        );
        let line = json_line(r#"{"decision":"allow","sub":"a\q"}"#);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["not_json"], r#"{"decision":"allow","sub":"a\q"}"#);
        assert_eq!(value.get("decision"), None);
    }
}
