//! The parts of a stream's configuration that move messages between subjects and streams:
//! `subject_transform`, `republish`, `mirror` and `sources`, with the checks nats-server makes
//! of them on their own (the checks against other streams are in `sourcing.rs`).

use serde::{Deserialize, Serialize};

use super::StreamConfig;
use crate::jetstream::errors::ApiError;
use crate::jetstream::subjects::{collide, is_subset};
use crate::jetstream::transform::{validate_destination, Transform};
use crate::proto::subject::is_valid_subject;

/// `{"src": …, "dest": …}`: both always written, as nats-server does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct SubjectTransformConfig {
    pub src: String,
    pub dest: String,
}

/// `republish`: after a message is stored, a copy goes to `dest` (transformed from `src`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RePublish {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src: String,
    pub dest: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub headers_only: bool,
}

/// Another account's stream: the API prefix to reach it and where its messages come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ExternalStream {
    pub api: String,
    pub deliver: String,
}

/// A mirror's or source's origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct StreamSource {
    pub name: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransformConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StreamSource {
    /// nats-server's index name: the stream, its filters and their destinations, which a
    /// source's `Nats-Stream-Source` header carries and duplicates are found by.
    pub fn index_name(&self) -> String {
        let (filters, dests) = if self.subject_transforms.is_empty() {
            let filter = if self.filter_subject.is_empty() {
                ">"
            } else {
                &self.filter_subject
            };
            (filter.to_string(), ">".to_string())
        } else {
            let or_all = |s: &str| {
                if s.is_empty() {
                    ">".to_string()
                } else {
                    s.to_string()
                }
            };
            let t = &self.subject_transforms;
            let filters: Vec<String> = t.iter().map(|t| or_all(&t.src)).collect();
            let dests: Vec<String> = t.iter().map(|t| or_all(&t.dest)).collect();
            (filters.join("\x0c"), dests.join("\x0c"))
        };
        match &self.external {
            Some(external) => format!(
                "{}:{} {filters} {dests}",
                self.name,
                short_hash(&external.api)
            ),
            None => format!("{} {filters} {dests}", self.name),
        }
    }
}

/// nats-server's short hash of a name: the first 8 bytes of its SHA-256, each as one of 62
/// letters and digits (it tells external origins of the same name apart).
fn short_hash(name: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| DIGITS[usize::from(*b) % DIGITS.len()] as char)
        .collect()
}

/// An external origin's prefixes, as nats-server checks them: a deliver prefix without
/// wildcards, an API prefix that is a subject without wildcards and not inside `$JS.API`.
fn check_external(external: &ExternalStream) -> Result<(), ApiError> {
    let literal =
        |s: &str| is_valid_subject(s.as_bytes()) && !s.split('.').any(|t| t == "*" || t == ">");
    let deliver = &external.deliver;
    if !deliver.is_empty() && !literal(deliver) {
        return Err(ApiError::external_deliver_wildcards(deliver));
    }
    let api = &external.api;
    if !api.is_empty() {
        if !literal(api) {
            return Err(ApiError::invalid_config(format!(
                "stream external api prefix {api:?} must be a valid subject without wildcards"
            )));
        }
        if collide(api, "$JS.API") {
            return Err(ApiError::external_api_overlap(api, "$JS.API"));
        }
    }
    Ok(())
}

/// The transforms' sources: each a subject, no two overlapping (as `overlap` says, which
/// differs between mirrors and sources in nats-server). `Err(true)` for an invalid subject,
/// `Err(false)` for an overlap.
fn check_filters(
    transforms: &[SubjectTransformConfig],
    overlap: fn(&str, &str) -> bool,
) -> Result<(), bool> {
    for (i, a) in transforms.iter().enumerate() {
        if !is_valid_subject(a.src.as_bytes()) {
            return Err(true);
        }
        let others = transforms.iter().enumerate().filter(|(j, _)| *j != i);
        if others.into_iter().any(|(_, b)| overlap(&a.src, &b.src)) {
            return Err(false);
        }
    }
    Ok(())
}

impl StreamConfig {
    /// The mirror and source checks nats-server makes before looking at other streams.
    pub(super) fn check_mirror_and_sources(&self) -> Result<(), ApiError> {
        if let Some(mirror) = &self.mirror {
            if self.first_seq > 0 {
                return Err(ApiError::mirror_with_first_seq());
            }
            if !self.subjects.is_empty() {
                return Err(ApiError::mirror_with_subjects());
            }
            if !self.sources.is_empty() {
                return Err(ApiError::mirror_with_sources());
            }
            if !mirror.filter_subject.is_empty() && !mirror.subject_transforms.is_empty() {
                return Err(ApiError::mirror_multiple_filters());
            }
            check_filters(&mirror.subject_transforms, collide).map_err(|invalid| {
                if invalid {
                    ApiError::mirror_invalid_subject_filter()
                } else {
                    ApiError::mirror_overlapping_filters()
                }
            })?;
            if mirror.external.is_none() && !super::config::is_valid_name(&mirror.name) {
                return Err(ApiError::mirror_invalid_stream_name());
            }
        }
        self.check_sources()?;
        let externals = self.mirror.iter().chain(&self.sources);
        for external in externals.filter_map(|s| s.external.as_ref()) {
            check_external(external)?;
        }
        Ok(())
    }

    fn check_sources(&self) -> Result<(), ApiError> {
        let mut seen = Vec::new();
        for source in &self.sources {
            if !super::config::is_valid_name(&source.name) {
                return Err(ApiError::source_invalid_stream_name());
            }
            let iname = source.index_name();
            if seen.contains(&iname) {
                return Err(ApiError::source_duplicate());
            }
            seen.push(iname);
            if source.external.is_some() {
                continue;
            }
            if !source.filter_subject.is_empty() && !source.subject_transforms.is_empty() {
                return Err(ApiError::source_multiple_filters());
            }
            let t = &source.subject_transforms;
            if t.iter().any(|t| validate_destination(&t.dest).is_err()) {
                return Err(ApiError::source_invalid_transform_destination());
            }
            check_filters(t, is_subset).map_err(|invalid| {
                if invalid {
                    ApiError::source_invalid_subject_filter()
                } else {
                    ApiError::source_overlapping_filters()
                }
            })?;
        }
        Ok(())
    }

    /// `republish`: no cycle back into the stream, a transform that can be built. Its empty
    /// `src` becomes `>`.
    pub(super) fn check_republish(&mut self) -> Result<(), ApiError> {
        let Some(republish) = &mut self.republish else {
            return Ok(());
        };
        if republish.src.is_empty() {
            republish.src = ">".into();
        }
        if self.subjects.iter().any(|s| collide(&republish.dest, s)) {
            return Err(ApiError::invalid_config(
                "stream configuration for republish destination forms a cycle",
            ));
        }
        if Transform::new(&republish.src, &republish.dest).is_err() {
            return Err(ApiError::invalid_config(format!(
                "stream configuration for republish with transform from '{}' to '{}' not valid",
                republish.src, republish.dest
            )));
        }
        Ok(())
    }

    /// The checks nats-server makes when it builds the stream (after those of the
    /// configuration): mirror and source filters and transforms, the subject transform.
    /// `Err` carries the text of the create error (10049).
    pub fn check_transforms(&self) -> Result<(), String> {
        self.check_source_transforms()?;
        self.check_subject_transform("stream subject transform")
    }

    /// The checks nats-server makes when it applies an update; `Err` carries the text of the
    /// update error (10069).
    pub fn check_transforms_on_update(&self) -> Result<(), String> {
        for t in self.sources.iter().flat_map(|s| &s.subject_transforms) {
            if let Err(e) = Transform::new(&t.src, &t.dest) {
                return Err(format!("unable to get subject transform for source: {e}"));
            }
        }
        self.check_subject_transform("stream configuration for subject transform")
    }

    fn check_subject_transform(&self, what: &str) -> Result<(), String> {
        if let Some(t) = &self.subject_transform {
            if let Err(e) = Transform::new(&t.src, &t.dest) {
                return Err(format!("{what} from '{}' to '{}': {e}", t.src, t.dest));
            }
        }
        Ok(())
    }

    fn check_source_transforms(&self) -> Result<(), String> {
        let bad = |s: &str| !s.is_empty() && !is_valid_subject(s.as_bytes());
        for (source, what) in self
            .mirror
            .iter()
            .map(|m| (m, "the mirror"))
            .chain(self.sources.iter().map(|s| (s, "the source")))
        {
            if source.subject_transforms.is_empty() {
                if bad(&source.filter_subject) {
                    let sep = if what == "the mirror" { "" } else { ":" };
                    return Err(format!(
                        "subject filter '{}' for {what}{sep} invalid subject",
                        source.filter_subject
                    ));
                }
                continue;
            }
            for t in &source.subject_transforms {
                if bad(&t.src) {
                    return Err(match what {
                        "the mirror" => format!(
                            "invalid subject transform source '{}' for the mirror: invalid subject",
                            t.src
                        ),
                        _ => format!("subject filter '{}' for the source: invalid subject", t.src),
                    });
                }
                if let Err(e) = Transform::new(&t.src, &t.dest) {
                    return Err(format!(
                        "subject transform from '{}' to '{}' for {what}: {e}",
                        t.src, t.dest
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The transforms of a stream's configuration, built once for the publish path.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    /// `subject_transform`: a matching subject is stored as its transform.
    pub input: Option<Transform>,
    /// `republish`, and whether only headers go.
    pub republish: Option<(Transform, bool)>,
}

impl Compiled {
    /// The transforms of a checked configuration (one whose transforms can be built).
    pub fn of(config: &StreamConfig) -> Compiled {
        let build = |src: &str, dest: &str| Transform::new(src, dest).ok().flatten();
        Compiled {
            input: config
                .subject_transform
                .as_ref()
                .and_then(|t| build(&t.src, &t.dest)),
            republish: config
                .republish
                .as_ref()
                .and_then(|r| Some((build(&r.src, &r.dest)?, r.headers_only))),
        }
    }
}

/// A stored message's copy for `republish`, sent once the stream's lock is released.
#[derive(Debug)]
pub(crate) struct Republished {
    pub subject: String,
    pub headers: Vec<u8>,
    pub payload: Vec<u8>,
}

/// The copy `republish` sends of a message stored at `seq` on `subject`, or `None` when the
/// subject is not one the republish source matches. `last_on_subject` is the sequence of the
/// subject's previous message (0 for none).
pub(crate) fn republished(
    stream: &str,
    compiled: &Compiled,
    stored: (&str, u64, i64),
    last_on_subject: u64,
    hdrs: Option<&[u8]>,
    payload: &[u8],
) -> Option<Republished> {
    use crate::jetstream::headers::HeaderBlock;
    let (transform, headers_only) = compiled.republish.as_ref()?;
    let (subject, seq, timestamp) = stored;
    let to = transform.apply(subject)?;
    let block = hdrs.map_or_else(HeaderBlock::new, HeaderBlock::extend);
    let mut block = block
        .add("Nats-Stream", stream)
        .add("Nats-Subject", subject)
        .add("Nats-Sequence", seq)
        .add("Nats-Time-Stamp", crate::jetstream::time::format(timestamp))
        .add("Nats-Last-Sequence", last_on_subject);
    if *headers_only {
        block = block.add("Nats-Msg-Size", payload.len());
    }
    Some(Republished {
        subject: to,
        headers: block.finish(),
        payload: if *headers_only {
            Vec::new()
        } else {
            payload.to_vec()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<StreamConfig, ApiError> {
        serde_json::from_str::<StreamConfig>(json)
            .unwrap()
            .normalize()
    }

    #[test]
    fn mirrors_take_no_subjects_nor_sources_and_keep_no_duplicate_window() {
        let mirror = config(r#"{"name":"S","mirror":{"name":"O"}}"#).unwrap();
        assert!(mirror.subjects.is_empty());
        assert_eq!(mirror.duplicate_window, 0);
        let e = config(r#"{"name":"S","subjects":["a"],"mirror":{"name":"O"}}"#).unwrap_err();
        assert_eq!(e.err_code, 10034);
        let e = config(r#"{"name":"S","mirror":{"name":"O"},"sources":[{"name":"P"}]}"#);
        assert_eq!(e.unwrap_err().err_code, 10031);
        let sourced = config(r#"{"name":"S","sources":[{"name":"O"}]}"#).unwrap();
        assert!(sourced.subjects.is_empty());
        let twice = r#"{"name":"S","sources":[{"name":"O"},{"name":"O","filter_subject":">"}]}"#;
        assert_eq!(config(twice).unwrap_err().err_code, 10140);
    }

    #[test]
    fn external_origins_are_checked_and_named_by_their_api_prefix() {
        let external = |api: &str| {
            format!(
                r#"{{"name":"S","sources":[{{"name":"O","external":{{"api":"{api}","deliver":"d"}}}}]}}"#
            )
        };
        let a = config(&external("$JS.A.API")).unwrap().sources[0].index_name();
        let b = config(&external("$JS.B.API")).unwrap().sources[0].index_name();
        let (name, rest) = a.split_once(' ').unwrap();
        let hash = name.strip_prefix("O:").unwrap();
        assert!(
            hash.len() == 8 && hash.chars().all(|c| c.is_ascii_alphanumeric()),
            "{a}"
        );
        assert_eq!(rest, "> >");
        assert_ne!(a, b, "another prefix, another name");
        let wildcard =
            r#"{"name":"S","mirror":{"name":"O","external":{"api":"a","deliver":"d.>"}}}"#;
        assert_eq!(config(wildcard).unwrap_err().err_code, 10024);
    }

    #[test]
    fn a_republished_copy_adds_the_stream_headers_to_the_messages_own() {
        let c = config(r#"{"name":"R","subjects":["r.*"],"republish":{"dest":"out.>"}}"#).unwrap();
        let compiled = Compiled::of(&c);
        let own = b"NATS/1.0\r\nA: 1\r\n\r\n";
        let copy = republished(
            "R",
            &compiled,
            ("r.x", 7, 1_000_000_000),
            3,
            Some(own),
            b"hi",
        )
        .unwrap();
        assert_eq!(copy.subject, "out.r.x");
        let headers = String::from_utf8(copy.headers).unwrap();
        assert_eq!(
            headers,
            "NATS/1.0\r\nA: 1\r\nNats-Stream: R\r\nNats-Subject: r.x\r\nNats-Sequence: 7\r\n\
             Nats-Time-Stamp: 1970-01-01T00:00:01Z\r\nNats-Last-Sequence: 3\r\n\r\n"
        );
        assert_eq!(copy.payload, b"hi");

        let c = config(r#"{"name":"R","subjects":["r.*"],"republish":{"src":"r.y","dest":"o","headers_only":true}}"#)
            .unwrap();
        let compiled = Compiled::of(&c);
        assert!(republished("R", &compiled, ("r.x", 1, 0), 0, None, b"hi").is_none());
        let copy = republished("R", &compiled, ("r.y", 1, 0), 0, None, b"hi").unwrap();
        assert!(copy.payload.is_empty());
        assert!(String::from_utf8(copy.headers)
            .unwrap()
            .ends_with("Nats-Msg-Size: 2\r\n\r\n"));
    }
}
