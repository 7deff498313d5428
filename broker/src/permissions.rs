//! Publish and subscribe permissions of a connection, compiled from the configured subject
//! lists into subject indexes.

use std::sync::Arc;

use crate::options::{Permissions, SubjectRules};
use crate::sublist::Sublist;

/// A set of subjects (with wildcards) that a subject can be tested against.
pub(crate) type SubjectSet = Sublist<()>;

/// One direction's rules.
struct Rules {
    allow: Option<SubjectSet>,
    deny: Option<Arc<SubjectSet>>,
}

impl Rules {
    fn new(rules: &SubjectRules) -> Rules {
        Rules {
            allow: (!rules.allow.is_empty()).then(|| set(&rules.allow)),
            deny: (!rules.deny.is_empty()).then(|| Arc::new(set(&rules.deny))),
        }
    }

    fn allows(&self, subject: &[u8]) -> bool {
        self.allow.as_ref().is_none_or(|a| matches(a, subject))
            && self.deny.as_ref().is_none_or(|d| !matches(d, subject))
    }
}

fn set(subjects: &[String]) -> SubjectSet {
    let set = Sublist::default();
    for s in subjects {
        set.insert(s.as_bytes(), None, Arc::new(()));
    }
    set
}

/// Whether `subject` matches an entry of `set`.
pub(crate) fn matches(set: &SubjectSet, subject: &[u8]) -> bool {
    !set.matches(subject).plain.is_empty()
}

/// What one connection may do.
pub(crate) struct Checker {
    publish: Rules,
    subscribe: Rules,
}

impl Checker {
    pub fn new(perms: &Permissions) -> Checker {
        Checker {
            publish: Rules::new(&perms.publish),
            subscribe: Rules::new(&perms.subscribe),
        }
    }

    /// May the connection publish to this literal subject?
    pub fn can_publish(&self, subject: &[u8]) -> bool {
        self.publish.allows(subject)
    }

    /// May the connection subscribe to this subject (wildcards compared as tokens)?
    pub fn can_subscribe(&self, subject: &[u8]) -> bool {
        self.subscribe.allows(subject)
    }

    /// For a wildcard subscription, the denied subjects whose messages it must not get.
    pub fn delivery_filter(&self, subject: &[u8]) -> Option<Arc<SubjectSet>> {
        let wildcard = subject
            .split(|&b| b == b'.')
            .any(|t| t == b"*" || t == b">");
        self.subscribe.deny.clone().filter(|_| wildcard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> SubjectRules {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        SubjectRules {
            allow: own(allow),
            deny: own(deny),
        }
    }

    #[test]
    fn allow_lists_admit_only_matching_subjects_and_deny_lists_win() {
        let perms = Permissions {
            publish: rules(&["orders.>"], &["orders.secret"]),
            subscribe: rules(&[], &["admin.>"]),
        };
        let c = Checker::new(&perms);
        assert!(c.can_publish(b"orders.new"));
        assert!(!c.can_publish(b"orders.secret"));
        assert!(!c.can_publish(b"other"));
        assert!(c.can_subscribe(b"anything"));
        assert!(!c.can_subscribe(b"admin.users"));
    }

    #[test]
    fn wildcard_subscriptions_get_a_filter_of_the_denied_subjects() {
        let perms = Permissions {
            publish: rules(&[], &[]),
            subscribe: rules(&[], &["foo.secret"]),
        };
        let c = Checker::new(&perms);
        assert!(c.can_subscribe(b"foo.*"));
        let filter = c.delivery_filter(b"foo.*").expect("a filter");
        assert!(matches(&filter, b"foo.secret"));
        assert!(!matches(&filter, b"foo.open"));
        assert!(c.delivery_filter(b"foo.open").is_none());
    }
}
