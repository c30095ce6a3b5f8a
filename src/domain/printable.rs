//! Text from tokens and audit events, made safe to print on a terminal.
//!
//! A subject claim is any string its issuer signed, and an unverified token pasted into
//! `ferry policy explain` is any string at all. Printed raw, control characters (an ANSI escape
//! sequence, a carriage return, a newline that forges a row) and invisible format characters
//! could rewrite an operator's screen or make one value read as another. Every such character is
//! shown as a `\u{..}` escape instead, and a backslash is doubled, so an escape in the output
//! always stands for a character that was there; everything else is left as it is.

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
}
