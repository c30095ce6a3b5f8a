//! Text from tokens and audit events, made safe to print on a terminal.
//!
//! A subject claim is any string its issuer signed, and an unverified token pasted into
//! `ferry policy explain` is any string at all. Printed raw, control characters (an ANSI escape
//! sequence, a carriage return, a newline that forges a row) and bidirectional overrides could
//! rewrite an operator's screen or make one value read as another. Every such character is shown
//! as a `\u{..}` escape instead; everything else is left as it is.

use std::borrow::Cow;

/// `text` with control characters (C0, DEL, C1) and bidirectional controls escaped.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
    }
}
