//! Subject matching: a trie of subject tokens holding subscriptions, with `*` and `>` wildcards
//! and queue groups.
//!
//! Every change bumps a generation number; callers cache match results and drop their cache
//! when the generation moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// The subscriptions a subject matches: plain ones, and queue subscriptions grouped by queue.
#[derive(Debug)]
pub(crate) struct Matches<T> {
    /// Subscriptions without a queue group: each gets a copy.
    pub plain: Vec<Arc<T>>,
    /// One list per queue group: one member of each gets a copy.
    pub groups: Vec<Vec<Arc<T>>>,
}

#[cfg(test)]
impl<T> Matches<T> {
    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.groups.is_empty()
    }
}

/// A set of subscriptions indexed by subject.
pub(crate) struct Sublist<T> {
    root: RwLock<Level<T>>,
    generation: AtomicU64,
    count: AtomicU64,
}

struct Level<T> {
    literal: HashMap<Box<[u8]>, Node<T>>,
    star: Option<Box<Node<T>>>,
    full: Option<Box<Node<T>>>,
}

/// A queue group's name and members at one node.
type QueueGroup<T> = (Box<[u8]>, Vec<Arc<T>>);

struct Node<T> {
    next: Level<T>,
    plain: Vec<Arc<T>>,
    queues: Vec<QueueGroup<T>>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Level {
            literal: HashMap::new(),
            star: None,
            full: None,
        }
    }
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            next: Level::default(),
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl<T> Level<T> {
    fn child(&mut self, token: &[u8]) -> &mut Node<T> {
        match token {
            b"*" => self.star.get_or_insert_with(Default::default),
            b">" => self.full.get_or_insert_with(Default::default),
            _ => self.literal.entry(token.into()).or_default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.star.is_none() && self.full.is_none()
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty() && self.next.is_empty()
    }

    fn collect(&self, out: &mut Matches<T>) {
        out.plain.extend(self.plain.iter().cloned());
        for (_, members) in &self.queues {
            out.groups.push(members.clone());
        }
    }
}

impl<T> Default for Sublist<T> {
    fn default() -> Self {
        Sublist {
            root: RwLock::new(Level::default()),
            generation: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl<T> Sublist<T> {
    /// Adds `sub` under `subject` (already validated), in `queue` if given.
    pub fn insert(&self, subject: &[u8], queue: Option<&[u8]>, sub: Arc<T>) {
        let mut root = self.root.write();
        let mut tokens = subject.split(|&b| b == b'.');
        let first = tokens.next().unwrap_or_default();
        let mut node = root.child(first);
        for token in tokens {
            node = node.next.child(token);
        }
        match queue {
            None => node.plain.push(sub),
            Some(q) => match node.queues.iter_mut().find(|(name, _)| &**name == q) {
                Some((_, members)) => members.push(sub),
                None => node.queues.push((q.into(), vec![sub])),
            },
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Removes `sub` from `subject`; returns whether it was there.
    pub fn remove(&self, subject: &[u8], queue: Option<&[u8]>, sub: &Arc<T>) -> bool {
        let mut root = self.root.write();
        let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
        let removed = remove_in(&mut root, &tokens, queue, sub);
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    /// Every subscription whose subject matches the literal `subject`. A subject with an empty
    /// token (`a..b`, `a.`, `.a`, or empty) matches nothing, as in nats-server: such a publish
    /// reaches no subscriber, no stream and no permission's allow list.
    pub fn matches(&self, subject: &[u8]) -> Matches<T> {
        let mut out = Matches {
            plain: Vec::new(),
            groups: Vec::new(),
        };
        let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
        if tokens.iter().any(|t| t.is_empty()) {
            return out;
        }
        match_level(&self.root.read(), &tokens, &mut out);
        out
    }

    /// Changes with every insert and remove.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Number of subscriptions held.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

fn match_level<T>(level: &Level<T>, tokens: &[&[u8]], out: &mut Matches<T>) {
    let Some((token, rest)) = tokens.split_first() else {
        return;
    };
    if let Some(full) = &level.full {
        full.collect(out);
    }
    if let Some(star) = &level.star {
        match_node(star, rest, out);
    }
    if let Some(node) = level.literal.get(*token) {
        match_node(node, rest, out);
    }
}

fn match_node<T>(node: &Node<T>, rest: &[&[u8]], out: &mut Matches<T>) {
    if rest.is_empty() {
        node.collect(out);
    } else {
        match_level(&node.next, rest, out);
    }
}

fn remove_in<T>(
    level: &mut Level<T>,
    tokens: &[&[u8]],
    queue: Option<&[u8]>,
    sub: &Arc<T>,
) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return false;
    };
    let slot: Option<&mut Node<T>> = match *token {
        b"*" => level.star.as_deref_mut(),
        b">" => level.full.as_deref_mut(),
        literal => level.literal.get_mut(literal),
    };
    let Some(node) = slot else { return false };
    let removed = if rest.is_empty() {
        remove_from_node(node, queue, sub)
    } else {
        remove_in(&mut node.next, rest, queue, sub)
    };
    if removed && node.is_empty() {
        match *token {
            b"*" => level.star = None,
            b">" => level.full = None,
            literal => {
                level.literal.remove(literal);
            }
        }
    }
    removed
}

fn remove_from_node<T>(node: &mut Node<T>, queue: Option<&[u8]>, sub: &Arc<T>) -> bool {
    let list = match queue {
        None => &mut node.plain,
        Some(q) => match node.queues.iter_mut().find(|(name, _)| &**name == q) {
            Some((_, members)) => members,
            None => return false,
        },
    };
    let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, sub)) else {
        return false;
    };
    list.swap_remove(i);
    node.queues.retain(|(_, members)| !members.is_empty());
    true
}

#[cfg(test)]
#[path = "sublist_tests.rs"]
mod tests;
