//! YAML nodes -> compiled [`Matcher`]s and claim [`Condition`]s (POLICY.md "Matchers").
//!
//! Every rejection says what to write instead; every condition keeps the position of the YAML
//! node it came from, so traces and lints can point at it.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

use super::matcher::{Matcher, Pattern, Scalar};
use super::model::{Condition, Target};
use super::yaml::{Node, Pos, Yaml};

/// The keys that make a mapping a matcher rather than nested claims.
pub(crate) const MATCHER_WORDS: [&str; 7] = [
    "glob", "regex", "one_of", "not", "any_of", "exists", "contains",
];

/// Compiled regexes (and globs) may use at most this much memory: a policy file cannot make
/// the broker build an enormous automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compile error: where, and what to write instead.
pub(crate) type Problem = (Pos, String);

/// An expected value: a plain scalar or a matcher object (never nested claims).
pub(crate) fn matcher(node: &Node) -> Result<Matcher, Problem> {
    let pos = Pos::of(node);
    match &node.value {
        Yaml::Map(entries) => matcher_object(pos, entries),
        Yaml::Seq(_) => Err((
            pos,
            "a list is not an expected value: write `{ one_of: [...] }` for any of these \
             values, or `{ contains: VALUE }` for an array claim that holds a value"
                .to_string(),
        )),
        _ => scalar(node).map(Matcher::Exact),
    }
}

fn scalar(node: &Node) -> Result<Scalar, Problem> {
    let pos = Pos::of(node);
    match &node.value {
        Yaml::Bool(b) => Ok(Scalar::Bool(*b)),
        Yaml::Int(i) => Ok(Scalar::Int(i128::from(*i))),
        Yaml::UInt(u) => Ok(Scalar::Int(i128::from(*u))),
        Yaml::Float(f) => Ok(Scalar::number(*f)),
        Yaml::String(s) => Ok(Scalar::String(s.clone())),
        Yaml::Null => Err((
            pos,
            "null is not an expected value: write `{ exists: false }` to require a claim to be \
             absent, or quote \"null\" for the string"
                .to_string(),
        )),
        other => Err((
            pos,
            format!("expected a plain value, found {}", other.kind()),
        )),
    }
}

fn matcher_object(
    pos: Pos,
    entries: &[(serde_saphyr::Spanned<String>, Node)],
) -> Result<Matcher, Problem> {
    let words: Vec<&str> = entries
        .iter()
        .map(|(k, _)| k.value.as_str())
        .filter(|k| is_matcher_word(k))
        .collect();
    match (words.len(), entries.len()) {
        (0, _) => Err((
            pos,
            format!(
                "expected a value or a matcher object with one of {}, found a mapping",
                word_list()
            ),
        )),
        (1, 1) => {
            let (key, arg) = &entries[0];
            matcher_word(&key.value, arg)
        }
        (1, _) => Err((pos, mixed_message(entries))),
        _ => Err((
            pos,
            format!(
                "a matcher object takes exactly one matcher word, found `{}`: combine \
                 alternatives with `{{ any_of: [...] }}`, or list each condition under its claim",
                words.join("` and `")
            ),
        )),
    }
}

fn mixed_message(entries: &[(serde_saphyr::Spanned<String>, Node)]) -> String {
    let word = entries
        .iter()
        .map(|(k, _)| k.value.as_str())
        .find(|k| is_matcher_word(k));
    let other = entries
        .iter()
        .map(|(k, _)| k.value.as_str())
        .find(|k| !is_matcher_word(k));
    format!(
        "`{}` is a matcher word and cannot be mixed with the claim name `{}` in one mapping: \
         write the matcher alone as the claim's value, or reach a claim literally named `{}` \
         with `when:`",
        word.unwrap_or_default(),
        other.unwrap_or_default(),
        word.unwrap_or_default()
    )
}

fn matcher_word(word: &str, arg: &Node) -> Result<Matcher, Problem> {
    let pos = Pos::of(arg);
    match (word, &arg.value) {
        ("glob", Yaml::String(p)) => glob(pos, p).map(Matcher::Glob),
        ("regex", Yaml::String(r)) => {
            compile_regex(pos, &format!("^(?:{r})$"), r, "regex").map(Matcher::Regex)
        }
        ("one_of", Yaml::Seq(items)) if !items.is_empty() => items
            .iter()
            .map(|item| {
                scalar(item).map_err(|(p, m)| {
                    (
                        p,
                        format!(
                            "{m} (one_of takes plain values; use `any_of` to combine matchers)"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(Matcher::OneOf),
        ("any_of", Yaml::Seq(items)) if !items.is_empty() => items
            .iter()
            .map(matcher)
            .collect::<Result<_, _>>()
            .map(Matcher::AnyOf),
        ("not", _) => Ok(Matcher::Not(Box::new(matcher(arg)?))),
        ("contains", _) => Ok(Matcher::Contains(Box::new(matcher(arg)?))),
        ("exists", Yaml::Bool(b)) => Ok(Matcher::Exists(*b)),
        ("glob" | "regex", other) => Err((
            pos,
            format!("`{word}` takes a string, found {}", other.kind()),
        )),
        ("one_of" | "any_of", Yaml::Seq(_)) => {
            Err((pos, format!("`{word}` needs at least one entry")))
        }
        ("one_of" | "any_of", other) => Err((
            pos,
            format!("`{word}` takes a list, found {}", other.kind()),
        )),
        (_, other) => Err((
            pos,
            format!("`{word}` takes true or false, found {}", other.kind()),
        )),
    }
}

/// A whole-string glob (POLICY.md), e.g. for guardrail scope lists.
pub(crate) fn glob(pos: Pos, source: &str) -> Result<Pattern, Problem> {
    compile_regex(pos, &glob_to_regex(source), source, "glob")
}

fn compile_regex(pos: Pos, anchored: &str, source: &str, word: &str) -> Result<Pattern, Problem> {
    if let Some(regex) = REGEX_CACHE.with(|c| c.borrow().get(anchored).cloned()) {
        return Ok(Pattern {
            source: source.to_string(),
            regex,
        });
    }
    let regex = RegexBuilder::new(anchored)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail: Vec<String> = e
                .to_string()
                .lines()
                .map(|l| l.trim().to_string())
                .collect();
            (pos, format!("invalid {word}: {}", detail.join(" ")))
        })?;
    REGEX_CACHE.with(|c| c.borrow_mut().insert(anchored.to_string(), regex.clone()));
    Ok(Pattern {
        source: source.to_string(),
        regex,
    })
}

thread_local! {
    /// Compiled patterns of the load in progress on this thread, by anchored pattern: a large
    /// set repeats the same globs (`refs/heads/*`) thousands of times, and building a regex's
    /// automaton is most of a load's cost. A `Regex` clone shares the compiled program.
    static REGEX_CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Runs one load with a fresh pattern cache, emptied afterwards so nothing outlives the load.
pub(crate) fn with_pattern_cache<T>(load: impl FnOnce() -> T) -> T {
    REGEX_CACHE.with(|c| c.borrow_mut().clear());
    let out = load();
    REGEX_CACHE.with(|c| c.borrow_mut().clear());
    out
}

/// Whole-string glob: `*` is any run (including `/` and `:`), `?` one character, nothing else
/// is special.
pub(crate) fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^(?s:");
    let mut buf = [0u8; 4];
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut buf))),
        }
    }
    re.push_str(")$");
    re
}

pub(crate) fn is_matcher_word(key: &str) -> bool {
    MATCHER_WORDS.contains(&key)
}

fn word_list() -> String {
    MATCHER_WORDS
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `claims:` mapping -> one condition per leaf, in file order. `prefix` is the trace path of
/// the mapping (`claims`, `any_of[1].claims`). Problems are collected, not stopped at.
pub(crate) fn claims(
    node: &Node,
    prefix: &str,
    out: &mut Vec<Condition>,
    problems: &mut Vec<Problem>,
) {
    walk_claims(node, prefix, &mut Vec::new(), out, problems);
}

fn walk_claims(
    node: &Node,
    prefix: &str,
    keys: &mut Vec<String>,
    out: &mut Vec<Condition>,
    problems: &mut Vec<Problem>,
) {
    let Yaml::Map(entries) = &node.value else {
        let what = node.value.kind();
        problems.push((
            Pos::of(node),
            format!("expected a mapping of claim names to values, found {what}"),
        ));
        return;
    };
    for (key, value) in entries {
        keys.push(key.value.clone());
        if is_nested_claims(value) {
            walk_claims(value, prefix, keys, out, problems);
        } else {
            match matcher(value) {
                Ok(m) => out.push(Condition {
                    target: Target::Claim(keys.clone()),
                    path: format!("{prefix}.{}", keys.join(".")),
                    matcher: m,
                    pos: Pos::of(value),
                }),
                Err(p) => problems.push(p),
            }
        }
        keys.pop();
    }
}

/// A mapping none of whose keys is a matcher word is nested claims.
fn is_nested_claims(node: &Node) -> bool {
    matches!(&node.value, Yaml::Map(entries) if !entries.is_empty()
        && entries.iter().all(|(k, _)| !is_matcher_word(&k.value)))
}
