//! Links between accounts: the `imports` and `exports` of the configuration file.
//!
//! - A **stream import** makes messages published in the exporting account (on the imported
//!   subject) reach the importing account's subscribers too, under the subject the import
//!   maps them to. The exporter keeps a [`StreamRoute`] per import and offers each message it
//!   routes to the routes whose subject matches ([`Links::route_streams`]); a stream in the
//!   importing account that captures the mapped subject stores it like any other message.
//! - A **service import** makes requests published in the importing account (on the import's
//!   local subject) reach the exporter's subscribers on the exported subject. It is one of the
//!   broker's own subscriptions in the importing account ([`service::ServiceImport`]). A
//!   request's reply subject is replaced by one made in the exporter (`_R_.<account
//!   token>.<request token>`), and what the responder publishes there goes back to the
//!   requester's own reply subject, once (`singleton`, the default) or until the export's
//!   `response_threshold` passes without a response (`stream`, `chunked`, which an empty
//!   message also ends) ([`service::Responses`]).
//!
//! As in nats-server, one hop at a time: a message that reached an account through a stream
//! import is not routed on through that account's own exports (a chain of service imports
//! is followed, up to [`MAX_HOPS`]).

pub(crate) mod service;

use std::cell::Cell;
use std::sync::Arc;

use anyhow::Context as _;

use crate::accounts::Account;
use crate::jetstream::transform::Transform;
use crate::options::{AccountConfig, ExportKind, Import, ImportKind};
use crate::proto::server_op::Delivery;
use crate::server::ServerState;
use service::{Responses, ServiceImport};

/// How long a request through a service import waits for its response by default
/// (`response_threshold`), as nats-server.
pub(crate) const DEFAULT_RESPONSE_THRESHOLD: std::time::Duration =
    std::time::Duration::from_secs(120);

/// How many service imports one message may pass through in a row; a longer chain is a cycle
/// (A imports from B what B imports from A) and the message is not forwarded further.
pub(crate) const MAX_HOPS: u8 = 8;

/// What an account exports that others import.
#[derive(Default)]
pub(crate) struct Links {
    /// One per stream import of this account's subjects.
    streams: Vec<StreamRoute>,
    /// Replies owed to requests that came in through the account's service exports.
    pub(crate) responses: Option<Arc<Responses>>,
    /// The account's own service imports, to find where a subject leads (see
    /// [`Links::service_target`]).
    services: Vec<ServiceRoute>,
}

/// Where one of the account's service imports leads.
struct ServiceRoute {
    /// The local subject.
    local: String,
    exporter: Arc<Account>,
    transform: Option<Transform>,
}

/// Where a stream import sends the exporter's messages.
struct StreamRoute {
    /// The imported subject, as the exporter has it.
    filter: String,
    /// The importing account.
    to: Arc<Account>,
    /// The subject mapping of the import's `to` or `prefix`; `None` keeps the subject.
    transform: Option<Transform>,
}

impl Links {
    /// Offers a message routed in the exporting account to the stream imports of its subject;
    /// true when it reached anyone.
    pub fn route_streams(&self, state: &ServerState, d: &Delivery<'_>) -> bool {
        if self.streams.is_empty() {
            return false;
        }
        let Ok(subject) = std::str::from_utf8(d.subject) else {
            return false;
        };
        let mut reached = false;
        for route in &self.streams {
            if !crate::jetstream::subjects::matches(subject, &route.filter) {
                continue;
            }
            let mapped = route.transform.as_ref().and_then(|t| t.apply(subject));
            let subject = mapped.as_deref().unwrap_or(subject).as_bytes();
            let routed = Delivery { subject, ..*d };
            reached |= state
                .publish_internal_once(&route.to, subject, &routed)
                .any();
        }
        reached
    }

    /// Whether a subscriber of an importing account would get a message on `subject`.
    pub fn streams_interest(&self, subject: &str) -> bool {
        self.streams.iter().any(|route| {
            crate::jetstream::subjects::matches(subject, &route.filter) && {
                let mapped = route.transform.as_ref().and_then(|t| t.apply(subject));
                let m = route
                    .to
                    .sublist
                    .matches(mapped.as_deref().unwrap_or(subject).as_bytes());
                !m.plain.is_empty() || !m.groups.is_empty()
            }
        })
    }

    /// The exporting account and subject a request published here on `subject` reaches
    /// through a service import.
    pub fn service_target(&self, subject: &str) -> Option<(Arc<Account>, String)> {
        self.services
            .iter()
            .find(|s| crate::jetstream::subjects::matches(subject, &s.local))
            .map(|s| {
                let mapped = s.transform.as_ref().and_then(|t| t.apply(subject));
                (
                    s.exporter.clone(),
                    mapped.unwrap_or_else(|| subject.to_string()),
                )
            })
    }

    /// Whether a message published here on `subject` reaches `account` through a stream
    /// import under the same subject.
    pub fn streams_reach(&self, subject: &str, account: &str) -> bool {
        self.streams.iter().any(|r| {
            r.to.name == account
                && crate::jetstream::subjects::matches(subject, &r.filter)
                && r.transform
                    .as_ref()
                    .is_none_or(|t| t.apply(subject).as_deref() == Some(subject))
        })
    }

    /// The subjects this account's stream imports cover, with the importing account: a
    /// subscriber arriving there may be the interest a push consumer here waits for.
    pub fn routes_to<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.streams
            .iter()
            .filter(move |r| r.to.name == account)
            .map(|r| r.filter.as_str())
    }
}

/// The subject mapping of an import: exporter → importer for a stream, the local subject →
/// the exporter's for a service. A `*` in the destination stands for the source's wildcards
/// in order, as in nats-server's imports.
pub(crate) fn import_transform(import: &Import) -> Result<Option<Transform>, String> {
    let (src, dest) = match &import.kind {
        ImportKind::Stream { to: Some(to) } => (import.subject.as_str(), to.as_str()),
        ImportKind::Service { to: Some(to), .. } => (to.as_str(), import.subject.as_str()),
        _ => return Ok(None),
    };
    if src == dest {
        return Ok(None);
    }
    let mut n = 0;
    let dest: Vec<String> = dest
        .split('.')
        .map(|t| match t {
            "*" => {
                n += 1;
                format!("{{{{wildcard({n})}}}}")
            }
            t => t.to_string(),
        })
        .collect();
    Transform::new(src, &dest.join("."))
        .map_err(|e| format!("cannot map {src:?} to {dest:?}: {e}", dest = dest.join(".")))
}

/// Whether `importer`'s `import` is allowed, as nats-server checks it: the exporting account
/// exists and exports the subject (or a wider one) as the same kind, to the importer when the
/// export lists accounts; and a subject mapping, if any, can work.
pub(crate) fn check_import(
    accounts: &[AccountConfig],
    importer: &str,
    import: &Import,
) -> Result<(), String> {
    let Some(exporter) = accounts.iter().find(|a| a.name == import.account) else {
        return Err(format!(
            "{:?} account not defined for import {:?}",
            import.account, import.subject
        ));
    };
    let service = matches!(import.kind, ImportKind::Service { .. });
    let allowed = exporter.exports.iter().any(|e| {
        matches!(e.kind, ExportKind::Service { .. }) == service
            && crate::jetstream::subjects::is_subset(&import.subject, &e.subject)
            && (e.accounts.is_empty() || e.accounts.iter().any(|a| a == importer))
    });
    if !allowed {
        let kind = if service { "service" } else { "stream" };
        return Err(format!(
            "error adding {kind} import {:?} to account {:?}: {kind} import not authorized",
            import.subject, importer
        ));
    }
    import_transform(import).map_err(|e| format!("import {:?}: {e}", import.subject))?;
    Ok(())
}

thread_local! {
    /// Service imports the message being forwarded on this thread has passed through.
    static HOPS: Cell<u8> = const { Cell::new(0) };
}

/// Runs `f` one service-import hop deeper; `None` past [`MAX_HOPS`].
pub(crate) fn one_hop_deeper<T>(f: impl FnOnce() -> T) -> Option<T> {
    let depth = HOPS.with(Cell::get);
    if depth >= MAX_HOPS {
        return None;
    }
    HOPS.with(|h| h.set(depth + 1));
    let out = f();
    HOPS.with(|h| h.set(depth));
    Some(out)
}

/// Sets up every import of the configuration file: the stream routes and response tables on
/// the exporting accounts, and the service imports' subscriptions in the importing ones.
/// Call once, before clients connect; the configuration was checked when it was read.
pub(crate) fn start(state: &Arc<ServerState>) -> anyhow::Result<()> {
    let from_jwts;
    let configs = match &state.trust {
        // Operator mode: the accounts' JWTs; an import they do not allow is left out with a
        // warning, as nats-server leaves it incomplete and starts.
        Some(trust) => {
            let mut accounts = trust.account_links();
            let all = accounts.clone();
            for importer in &mut accounts {
                let name = importer.name.clone();
                importer.imports.retain(|import| {
                    let checked = check_import(&all, &name, import);
                    if let Err(e) = &checked {
                        tracing::warn!("account {name}: import left out: {e}");
                    }
                    checked.is_ok()
                });
            }
            from_jwts = accounts;
            &from_jwts
        }
        None => &state.opts.accounts,
    };
    let mut links: std::collections::HashMap<String, Links> = Default::default();
    let account = |name: &str| {
        state
            .accounts
            .get(name)
            .with_context(|| format!("account {name:?} is not configured"))
    };
    for exporter in configs {
        if exporter
            .exports
            .iter()
            .any(|e| matches!(e.kind, ExportKind::Service { .. }))
        {
            let responses = Responses::start(state, &account(&exporter.name)?);
            links.entry(exporter.name.clone()).or_default().responses = Some(responses);
        }
    }
    for importer in configs {
        let to = account(&importer.name)?;
        for import in &importer.imports {
            let transform = import_transform(import).map_err(anyhow::Error::msg)?;
            let exporter = configs
                .iter()
                .find(|a| a.name == import.account)
                .with_context(|| format!("account {:?} is not configured", import.account))?;
            match &import.kind {
                ImportKind::Stream { .. } => {
                    links
                        .entry(import.account.clone())
                        .or_default()
                        .streams
                        .push(StreamRoute {
                            filter: import.subject.clone(),
                            to: to.clone(),
                            transform,
                        });
                }
                ImportKind::Service { to: local, .. } => {
                    let export = exporter
                        .exports
                        .iter()
                        .filter(|e| {
                            crate::jetstream::subjects::is_subset(&import.subject, &e.subject)
                        })
                        .find_map(|e| match e.kind {
                            ExportKind::Service {
                                response,
                                threshold,
                            } => Some((response, threshold)),
                            ExportKind::Stream => None,
                        })
                        .context("service import without its export")?;
                    links
                        .entry(importer.name.clone())
                        .or_default()
                        .services
                        .push(ServiceRoute {
                            local: local.clone().unwrap_or_else(|| import.subject.clone()),
                            exporter: account(&import.account)?,
                            transform: transform.clone(),
                        });
                    let responses = links
                        .get(&import.account)
                        .and_then(|l| l.responses.clone())
                        .context("service export without responses")?;
                    ServiceImport::subscribe(
                        state,
                        &to,
                        local.as_deref().unwrap_or(&import.subject),
                        ServiceImport {
                            state: Arc::downgrade(state),
                            importer: to.clone(),
                            exporter: account(&import.account)?,
                            transform,
                            response: export.0,
                            threshold: export.1,
                            responses,
                        },
                    );
                }
            }
        }
    }
    for (name, l) in links {
        let _ = account(&name)?.links.set(l);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
