//! W3C trace context (`traceparent`) carried in message headers and outbox rows, so one trace id
//! follows a transaction from the HTTP request through every event it causes.

use std::fmt;

/// The header name events carry their trace context in.
pub const TRACEPARENT: &str = "traceparent";

/// A trace id and the id of the span that caused this hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, never all zero.
    pub trace_id: u128,
    /// 8 bytes, never all zero.
    pub parent_id: u64,
}

impl TraceContext {
    /// A new trace.
    pub fn new_root() -> Self {
        Self {
            trace_id: fastrand::u128(1..),
            parent_id: fastrand::u64(1..),
        }
    }

    /// The same trace, one hop further (a new parent span id).
    pub fn child(self) -> Self {
        Self {
            trace_id: self.trace_id,
            parent_id: fastrand::u64(1..),
        }
    }

    /// The trace id as 32 lower-case hex digits (what logs show).
    pub fn trace_id_hex(self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; `None` if malformed.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let parent_id = u64::from_str_radix(parent, 16).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
        })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-01", self.trace_id, self.parent_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips() {
        let trace = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&trace.to_string()), Some(trace));
    }

    #[test]
    fn a_child_keeps_the_trace_id() {
        let trace = TraceContext::new_root();
        assert_eq!(trace.child().trace_id, trace.trace_id);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-abc-def-01",
            "00-00000000000000000000000000000000-0000000000000001-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
