//! Accounts: isolated subject spaces. Each has its own subscription index, so a message
//! published in one account reaches only subscribers of that account.
//!
//! Clients without an account of their own (no auth, a token, users of `authorization {}`)
//! share the global account `$G`. Accounts come from the configuration file
//! (`accounts { NAME { users } }`, named by NAME) or, in operator mode, from account JWTs (named
//! by the account's public key).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::client::Subscription;
use crate::sublist::Sublist;

/// The name of the global account, as nats-server.
pub(crate) const GLOBAL_ACCOUNT: &str = "$G";

/// One account: a name and the subscriptions of its clients.
pub(crate) struct Account {
    /// The configured name, or the public key of an account JWT.
    pub name: String,
    /// Every subscription of the account's clients.
    pub sublist: Sublist<Subscription>,
    /// Most clients in the account at once (an account JWT's `limits.conn`); `None`: no limit.
    max_connections: Option<usize>,
    /// Clients in the account now.
    connections: AtomicUsize,
    /// What other accounts import from this one, set once at start-up.
    pub links: std::sync::OnceLock<crate::links::Links>,
}

impl Account {
    fn new(name: &str, max_connections: Option<usize>) -> Arc<Account> {
        Arc::new(Account {
            name: name.to_string(),
            sublist: Sublist::default(),
            max_connections,
            connections: AtomicUsize::new(0),
            links: std::sync::OnceLock::new(),
        })
    }

    /// Counts one more client in the account, unless that would pass its connection limit.
    pub fn join(&self) -> bool {
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                let full = self.max_connections.is_some_and(|max| n >= max);
                (!full).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts one client fewer.
    pub fn leave(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether this is the global account `$G`.
    pub fn is_global(&self) -> bool {
        self.name == GLOBAL_ACCOUNT
    }
}

/// Every account of the server: those of start-up, plus those a configuration reload added.
pub(crate) struct Accounts {
    global: Arc<Account>,
    by_name: RwLock<HashMap<String, Arc<Account>>>,
}

impl Accounts {
    /// The global account and one account per name, with its connection limit (a repeated
    /// name, or `$G`, adds nothing).
    pub fn new<'a>(accounts: impl IntoIterator<Item = (&'a str, Option<usize>)>) -> Accounts {
        let global = Account::new(GLOBAL_ACCOUNT, None);
        let mut by_name = HashMap::from([(GLOBAL_ACCOUNT.to_string(), global.clone())]);
        for (name, max) in accounts {
            by_name
                .entry(name.to_string())
                .or_insert_with(|| Account::new(name, max));
        }
        Accounts {
            global,
            by_name: RwLock::new(by_name),
        }
    }

    /// Adds an account of this name (no connection limit) unless there is one; returns
    /// whether it was added.
    pub fn add(&self, name: &str) -> bool {
        let mut by_name = self.by_name.write();
        if by_name.contains_key(name) {
            return false;
        }
        by_name.insert(name.to_string(), Account::new(name, None));
        true
    }

    /// The global account `$G`.
    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    /// The account of this name (or public key).
    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.by_name.read().get(name).cloned()
    }

    /// Subscriptions held in all accounts.
    pub fn subscription_count(&self) -> u64 {
        self.by_name
            .read()
            .values()
            .map(|a| a.sublist.count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_account_always_exists_and_names_are_unique() {
        let accounts = Accounts::new([
            ("A", None),
            ("B", None),
            ("A", Some(1)),
            (GLOBAL_ACCOUNT, Some(1)),
        ]);
        assert!(accounts.global().is_global());
        assert!(Arc::ptr_eq(
            &accounts.get(GLOBAL_ACCOUNT).unwrap(),
            accounts.global()
        ));
        assert_eq!(accounts.get("A").unwrap().name, "A");
        assert!(!Arc::ptr_eq(
            &accounts.get("A").unwrap(),
            &accounts.get("B").unwrap()
        ));
        assert!(accounts.get("C").is_none());
        assert!(accounts.add("C"), "a reload adds an account");
        assert!(!accounts.add("A"), "an existing one stays as it is");
        assert_eq!(accounts.get("C").unwrap().name, "C");
        assert_eq!(accounts.subscription_count(), 0);
        assert!((0..3).all(|_| accounts.global().join()), "no limit on $G");
    }

    #[test]
    fn an_account_admits_clients_up_to_its_limit() {
        let accounts = Accounts::new([("one", Some(1)), ("none", Some(0))]);
        let one = accounts.get("one").unwrap();
        assert!(one.join());
        assert!(!one.join());
        one.leave();
        assert!(one.join());
        assert!(!accounts.get("none").unwrap().join());
    }
}
