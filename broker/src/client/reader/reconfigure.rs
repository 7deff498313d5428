//! What a configuration reload does to a connection, as nats-server: the new `max_payload` and
//! `max_control_line` apply at once; a logged-in client is checked again against the new users.
//! One whose user (by name or nkey) is gone, or is now in another account, is closed without a
//! word; one whose credentials no longer log in gets `Authorization Violation` and is closed;
//! the others take their user's new permissions, losing (with an error each) the subscriptions
//! these no longer allow.

use std::sync::Arc;

use super::{CloseReason, Connection};
use crate::client::Subscription;

impl Connection {
    /// Takes the settings now in force; `Err` closes the connection.
    pub(super) fn on_reload(&mut self) -> Result<(), CloseReason> {
        let live = self.state.live();
        self.limits.max_payload = live.opts.max_payload;
        self.limits.max_control_line = live.opts.max_control_line;
        self.live = live.clone();
        // Operator mode's users and accounts are JWTs, which a reload does not change.
        if self.state.trust.is_some() {
            return Ok(());
        }
        let Some(info) = &self.connect else {
            return Ok(());
        };
        let named = info.nkey.as_deref().or(info.user.as_deref());
        if let Some(identity) = named.filter(|n| !n.is_empty()) {
            let account = crate::auth::account_of(&live.opts, identity).map(|account| {
                account.map_or(crate::accounts::GLOBAL_ACCOUNT, |a| a.name.as_str())
            });
            if account != Some(self.client.account().name.as_str()) {
                tracing::debug!(
                    cid = self.client.id,
                    "closed: after a reload, the user is gone or in another account"
                );
                return Err(CloseReason::ClientClosed);
            }
        }
        let info = info.clone();
        let placement = self.log_in(&live, &info)?;
        if !Arc::ptr_eq(&placement.account, &self.client.account()) {
            return Err(CloseReason::ClientClosed);
        }
        self.perms = placement.perms;
        self.client.meta.lock().user = placement.user;
        self.drop_forbidden_subscriptions();
        Ok(())
    }

    /// Removes the subscriptions the permissions no longer allow, telling the client of each.
    fn drop_forbidden_subscriptions(&mut self) {
        let Some(perms) = &self.perms else {
            return;
        };
        let mut forbidden: Vec<Arc<Subscription>> = self
            .client
            .subs
            .lock()
            .values()
            .filter(|sub| !perms.can_subscribe(&sub.subject))
            .cloned()
            .collect();
        forbidden.sort_by(|a, b| a.sid.cmp(&b.sid));
        for sub in forbidden {
            self.state.unsubscribe(&sub);
            let subject = String::from_utf8_lossy(&sub.subject);
            let sid = String::from_utf8_lossy(&sub.sid);
            tracing::info!(
                cid = self.client.id,
                "removed subscription {subject:?} (sid {sid:?}): not authorized after a reload"
            );
            self.send_err(&format!(
                "Permissions Violation for Subscription to {subject:?} (sid {sid:?})"
            ));
        }
    }
}
