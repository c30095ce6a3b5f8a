//! The lookup structure `decide` uses so that it never scans every policy: by issuer, then by
//! `grant.audience` (or all of the issuer's), then by subject: exact subjects by value, glob
//! subjects by their literal prefix (the text before the first wildcard). All lists hold policy
//! positions in file-name order; candidates are merged back into that order.

use std::collections::{BTreeSet, HashMap};

use crate::domain::{Audience, IssuerName};

use super::model::{Mode, Policy};

/// Policies of one issuer (and maybe one grant audience), split by how their subject matches.
#[derive(Debug, Default)]
pub(crate) struct SubjectIndex {
    /// Policies whose `subject` is a plain string, by that string.
    exact: HashMap<String, Vec<usize>>,
    /// Policies whose `subject` is a glob, by the glob's literal prefix.
    by_prefix: HashMap<String, Vec<usize>>,
    /// The distinct byte lengths of those prefixes: the only prefixes of a subject to look up.
    prefix_lens: BTreeSet<usize>,
    /// Policies with a regex subject or none: always candidates.
    other: Vec<usize>,
    /// Every member, in order: for the rare deny path that must look beyond the subject.
    pub members: Vec<usize>,
    /// Whether any member is in `mode: audit` (they are evaluated even after a winner).
    pub has_audit: bool,
}

impl SubjectIndex {
    fn push(&mut self, i: usize, p: &Policy) {
        if let Some(s) = p.exact_subject() {
            self.exact.entry(s.to_string()).or_default().push(i);
        } else if let Some(prefix) = p.glob_subject_prefix() {
            self.prefix_lens.insert(prefix.len());
            self.by_prefix
                .entry(prefix.to_string())
                .or_default()
                .push(i);
        } else {
            self.other.push(i);
        }
        self.members.push(i);
        self.has_audit |= p.mode == Mode::Audit;
    }

    /// Candidate positions for a token subject, in file order. Policies left out cannot match:
    /// their exact subject differs, or their glob's literal prefix is not a prefix of it.
    pub fn candidates(&self, subject: &str) -> Vec<usize> {
        let exact = self.exact.get(subject).map(Vec::as_slice).unwrap_or(&[]);
        let mut out: Vec<usize> = Merge {
            a: exact,
            b: &self.other,
        }
        .collect();
        let mut sorted = true;
        for &len in self.prefix_lens.range(..=subject.len()) {
            let Some(prefix) = subject.get(..len) else {
                continue;
            };
            if let Some(list) = self.by_prefix.get(prefix) {
                sorted = false;
                out.extend_from_slice(list);
            }
        }
        if !sorted {
            out.sort_unstable();
        }
        out
    }
}

#[derive(Debug, Default)]
pub(crate) struct IssuerIndex {
    pub all: SubjectIndex,
    pub by_audience: HashMap<Audience, SubjectIndex>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    by_issuer: HashMap<IssuerName, IssuerIndex>,
}

impl Index {
    pub fn build(policies: &[Policy]) -> Index {
        let mut index = Index::default();
        for (i, p) in policies.iter().enumerate() {
            let entry = index.by_issuer.entry(p.issuer.clone()).or_default();
            entry.all.push(i, p);
            entry
                .by_audience
                .entry(p.grant.audience.clone())
                .or_default()
                .push(i, p);
        }
        index
    }

    pub fn issuer(&self, name: &IssuerName) -> Option<&IssuerIndex> {
        self.by_issuer.get(name)
    }
}

/// Merges two ascending position lists into one ascending sequence.
#[derive(Debug, Clone)]
pub(crate) struct Merge<'a> {
    a: &'a [usize],
    b: &'a [usize],
}

impl Iterator for Merge<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x <= y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (head, rest) = list.split_first()?;
        *list = rest;
        Some(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_ascending_order() {
        let m = Merge {
            a: &[1, 4, 9],
            b: &[0, 2, 3, 10],
        };
        assert_eq!(m.collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 9, 10]);
        assert_eq!(Merge { a: &[], b: &[] }.count(), 0);
    }
}
