//! The per-subject index: each stored subject gets a small id (kept per message by the
//! backends) and counters (messages, first and last sequence), and subject filters resolve to
//! the ids they match.

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::subject::subject_matches;

/// A subject's id in the [`SubjectIndex`].
pub(crate) type Sid = u32;

/// One stored subject and its counters.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// The literal subject.
    pub name: Arc<str>,
    /// Messages stored on it (0 only while being added or rebuilt).
    pub msgs: u64,
    /// Sequence of its first stored message.
    pub first: u64,
    /// Sequence of its last stored message.
    pub last: u64,
}

/// Subjects by name and by id.
#[derive(Debug, Default)]
pub(crate) struct SubjectIndex {
    ids: HashMap<Arc<str>, Sid>,
    slots: Vec<Option<Subject>>,
    free: Vec<Sid>,
}

/// What removing one message left a subject needing.
pub(crate) enum Removed {
    /// Nothing to recompute (or the subject is gone).
    Done,
    /// The removed message was the subject's first: find the next one.
    NeedFirst,
    /// The removed message was the subject's last: find the previous one.
    NeedLast,
}

impl SubjectIndex {
    /// The id of `name`, creating an empty entry when it is new.
    pub fn intern(&mut self, name: &str) -> Sid {
        if let Some(&sid) = self.ids.get(name) {
            return sid;
        }
        let name: Arc<str> = name.into();
        let subject = Subject {
            name: name.clone(),
            msgs: 0,
            first: 0,
            last: 0,
        };
        let sid = match self.free.pop() {
            Some(sid) => {
                self.slots[sid as usize] = Some(subject);
                sid
            }
            None => {
                self.slots.push(Some(subject));
                Sid::try_from(self.slots.len() - 1).expect("fewer than 2^32 subjects")
            }
        };
        self.ids.insert(name, sid);
        sid
    }

    /// The id of `name`, if it is stored.
    pub fn id(&self, name: &str) -> Option<Sid> {
        self.ids.get(name).copied()
    }

    /// The entry of a live id.
    pub fn get(&self, sid: Sid) -> &Subject {
        self.slots[sid as usize].as_ref().expect("live subject id")
    }

    /// The entry of a live id, to change.
    pub fn get_mut(&mut self, sid: Sid) -> &mut Subject {
        self.slots[sid as usize].as_mut().expect("live subject id")
    }

    /// Whether `sid` names a stored subject.
    pub fn contains(&self, sid: Sid) -> bool {
        self.slots.get(sid as usize).is_some_and(Option::is_some)
    }

    /// Counts a message appended (or recovered in order) on `sid`.
    pub fn add(&mut self, sid: Sid, seq: u64) {
        let s = self.get_mut(sid);
        if s.msgs == 0 {
            s.first = seq;
        }
        s.msgs += 1;
        s.last = seq;
    }

    /// Counts one message of `sid` removed; drops the subject at zero. With one message left,
    /// first and last are that one, without a search (a KV bucket's update).
    pub fn remove(&mut self, sid: Sid, seq: u64) -> Removed {
        let s = self.get_mut(sid);
        s.msgs -= 1;
        match s.msgs {
            0 => {
                self.drop_subject(sid);
                Removed::Done
            }
            1 if seq == s.first => {
                s.first = s.last;
                Removed::Done
            }
            1 if seq == s.last => {
                s.last = s.first;
                Removed::Done
            }
            _ if seq == s.first => Removed::NeedFirst,
            _ if seq == s.last => Removed::NeedLast,
            _ => Removed::Done,
        }
    }

    /// Counts one message of `sid` removed from the front without fixing its first (bulk
    /// removal); returns whether the first still needs a search.
    pub fn remove_uncounted(&mut self, sid: Sid) -> bool {
        let s = self.get_mut(sid);
        s.msgs -= 1;
        match s.msgs {
            0 => {
                self.drop_subject(sid);
                false
            }
            1 => {
                s.first = s.last;
                false
            }
            _ => true,
        }
    }

    /// Drops `sid` if it holds no message (after a refused append, or a rebuild).
    pub fn drop_if_empty(&mut self, sid: Sid) {
        if self.get(sid).msgs == 0 {
            self.drop_subject(sid);
        }
    }

    /// Drops every subject that holds no message.
    pub fn drop_empty(&mut self) {
        let empty: Vec<Sid> = self
            .iter()
            .filter(|(_, s)| s.msgs == 0)
            .map(|(i, _)| i)
            .collect();
        for sid in empty {
            self.drop_subject(sid);
        }
    }

    fn drop_subject(&mut self, sid: Sid) {
        if let Some(s) = self.slots[sid as usize].take() {
            self.ids.remove(&s.name);
            self.free.push(sid);
        }
    }

    /// Forgets every subject (purge of everything).
    pub fn clear(&mut self) {
        *self = SubjectIndex::default();
    }

    /// Stored subjects.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Every stored subject with its id.
    pub fn iter(&self) -> impl Iterator<Item = (Sid, &Subject)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as Sid, s.as_ref()?)))
    }

    /// The ids a filter matches.
    pub fn resolve(&self, filter: &Filter) -> Matcher {
        match filter {
            Filter::All => Matcher::All,
            Filter::Literal(s) => Matcher::One(self.id(s)),
            Filter::Wildcard(f) => {
                let mut set = vec![false; self.slots.len()];
                for (sid, s) in self.iter() {
                    set[sid as usize] = subject_matches(f.as_bytes(), s.name.as_bytes());
                }
                Matcher::Set(set)
            }
        }
    }
}

/// A subject filter as the API takes it: `None`, `""` and `>` mean every subject.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Filter<'a> {
    /// Every subject.
    All,
    /// One literal subject.
    Literal(&'a str),
    /// A filter with `*` or `>` tokens.
    Wildcard(&'a str),
}

impl<'a> Filter<'a> {
    /// Classifies a filter.
    pub fn new(filter: Option<&'a str>) -> Filter<'a> {
        match filter {
            None | Some("") | Some(">") => Filter::All,
            Some(f) if f.split('.').any(|t| t == "*" || t == ">") => Filter::Wildcard(f),
            Some(f) => Filter::Literal(f),
        }
    }
}

/// A resolved filter: which subject ids it matches.
pub(crate) enum Matcher {
    /// Every id.
    All,
    /// One id, or none when the literal subject is not stored.
    One(Option<Sid>),
    /// Ids by index.
    Set(Vec<bool>),
}

impl Matcher {
    /// Whether `sid` matches.
    pub fn contains(&self, sid: Sid) -> bool {
        match self {
            Matcher::All => true,
            Matcher::One(one) => *one == Some(sid),
            Matcher::Set(set) => set.get(sid as usize).copied().unwrap_or(false),
        }
    }

    /// The matching subject ids among `index`'s subjects.
    pub fn sids(&self, index: &SubjectIndex) -> Vec<Sid> {
        match self {
            Matcher::One(one) => one.iter().copied().collect(),
            _ => index
                .iter()
                .map(|(sid, _)| sid)
                .filter(|&sid| self.contains(sid))
                .collect(),
        }
    }
}
