//! The errors of the JetStream API, with the `code` (an HTTP-like status) and `err_code` that
//! nats-server gives each one, so that clients matching on `err_code` behave the same here.

use serde::Serialize;

/// An error answer of the JetStream API: `{"code":…,"err_code":…,"description":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ApiError {
    /// Status-like code: 400, 404, 500, 503.
    pub code: u16,
    /// nats-server's stable error number.
    pub err_code: u16,
    /// What went wrong, in nats-server's words.
    pub description: String,
}

impl ApiError {
    fn new(code: u16, err_code: u16, description: impl Into<String>) -> ApiError {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (error {})", self.description, self.err_code)
    }
}

/// Declares a constructor per error: name, code, err_code, description.
macro_rules! api_errors {
    ($($(#[$doc:meta])* $name:ident => $code:literal, $err:literal, $text:literal;)*) => {
        // The table follows nats-server's list; not every entry has a caller yet.
        #[allow(dead_code)]
        impl ApiError {
            $($(#[$doc])* pub fn $name() -> ApiError { ApiError::new($code, $err, $text) })*
        }
    };
}

api_errors! {
    /// A request body that is not the JSON expected.
    invalid_json => 400, 10025, "invalid JSON";
    /// A request that makes no sense.
    bad_request => 400, 10003, "bad request";
    /// A request that must be empty was not.
    not_empty_request => 400, 10038, "expected an empty request payload";
    /// No such stream.
    stream_not_found => 404, 10059, "stream not found";
    /// No such consumer.
    consumer_not_found => 404, 10014, "consumer not found";
    /// No such message.
    no_message_found => 404, 10037, "no message found";
    /// The subject's stream name differs from the body's.
    stream_mismatch => 400, 10056, "stream name in subject does not match request";
    /// Another stream has this name and another configuration.
    stream_name_exist => 400, 10058, "stream name already in use with a different configuration";
    /// Another stream already captures one of these subjects.
    subject_overlap => 400, 10065, "subjects overlap with an existing stream";
    /// Replication needs a cluster.
    replicas_not_supported => 500, 10074, "replicas > 1 not supported in non-clustered mode";
    /// Replicas cannot change.
    replicas_not_updatable => 400, 10061, "Replicas configuration can not be updated";
    /// A stream name with a path separator.
    stream_name_path_separators => 400, 10128, "Stream name can not contain path separators";
    /// A consumer name with a path separator.
    consumer_name_path_separators => 400, 10127, "Consumer name can not contain path separators";
    /// `Nats-Expected-Stream` names another stream.
    stream_not_match => 400, 10060, "expected stream does not match";
    /// The message is larger than the stream allows.
    message_too_big => 400, 10054, "message size exceeds maximum allowed";
    /// The headers are over 64 KiB.
    header_too_big => 400, 10097, "header size exceeds maximum allowed of 64k";
    /// The stream is sealed.
    stream_sealed => 400, 10109, "invalid operation on sealed stream";
    /// A consumer request without a config.
    consumer_config_required => 400, 10078, "consumer config required";
    /// A durable consumer with another configuration and a bound subscriber.
    consumer_name_exist => 400, 10013, "consumer name already in use";
    /// `action: create` over an existing, different consumer.
    consumer_already_exists => 400, 10148, "consumer already exists";
    /// `action: update` of a consumer that does not exist.
    consumer_does_not_exist => 400, 10149, "consumer does not exist";
    /// The deliver subject has wildcards.
    deliver_to_wildcards => 400, 10079, "consumer deliver subject has wildcards";
    /// A push consumer with max_waiting.
    push_max_waiting => 400, 10080, "consumer in push mode can not set max waiting";
    /// The deliver subject is one of the stream's subjects.
    deliver_cycle => 400, 10081, "consumer deliver subject forms a cycle";
    /// max_ack_pending with ack_policy none.
    max_pending_ack_policy => 400, 10082, "consumer requires ack policy for max ack pending";
    /// An idle heartbeat under 100 ms.
    small_heartbeat => 400, 10083, "consumer idle heartbeat needs to be >= 100ms";
    /// A pull consumer with ack_policy none.
    pull_requires_ack => 400, 10084, "consumer in pull mode requires ack policy";
    /// max_waiting below zero.
    max_waiting_negative => 400, 10087, "consumer max waiting needs to be positive";
    /// Heartbeats on a pull consumer.
    heartbeat_requires_push => 400, 10088, "consumer idle heartbeat requires a push based consumer";
    /// Flow control on a pull consumer.
    flow_control_requires_push => 400, 10089, "consumer flow control requires a push based consumer";
    /// The filter captures nothing of the stream.
    filter_not_subset => 400, 10093, "consumer filter subject is not a valid subset of the interest subjects";
    /// A work queue consumer without explicit acks.
    wq_requires_explicit_ack => 400, 10098, "workqueue stream requires explicit ack";
    /// A second unfiltered consumer on a work queue.
    wq_multiple_unfiltered => 400, 10099, "multiple non-filtered consumers not allowed on workqueue stream";
    /// Two work queue consumers whose filters overlap.
    wq_not_unique => 400, 10100, "filtered consumer not unique on workqueue stream";
    /// A work queue consumer that does not start at the beginning.
    wq_not_deliver_all => 400, 10101, "consumer must be deliver all on workqueue stream";
    /// A durable name with `.`, `*` or `>`.
    bad_durable_name => 400, 10103, "durable name can not contain '.', '*', '>'";
    /// A push consumer whose deliver subject already has an active subscriber.
    consumer_existing_active => 400, 10105, "consumer already exists and is still active";
    /// Flow control without heartbeats.
    flow_control_needs_heartbeats => 400, 10108, "consumer with flow control also needs heartbeats";
    /// A deliver subject that is not a valid subject.
    invalid_deliver_subject => 400, 10112, "invalid push consumer deliver subject";
    /// max_batch below one.
    max_request_batch_negative => 400, 10114, "consumer max request batch needs to be > 0";
    /// max_expires under a millisecond.
    max_request_expires_too_small => 400, 10115, "consumer max request expires needs to be >= 1ms";
    /// max_deliver not above the number of backoff steps.
    max_deliver_backoff => 400, 10116, "max deliver is required to be > length of backoff values";
    /// The create subject's filter differs from the config's.
    filter_subject_mismatch => 400, 10131, "Consumer create request did not match filtered subject from create subject";
    /// `durable_name` and `name` differ.
    durable_and_name_mismatch => 400, 10132, "Consumer Durable and Name have to be equal if both are provided";
    /// Both filter_subject and filter_subjects.
    duplicate_filter_subjects => 400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified";
    /// filter_subjects that overlap.
    overlapping_filters => 400, 10138, "consumer subject filters cannot overlap";
    /// An empty entry in filter_subjects.
    empty_filter => 400, 10139, "consumer filter in FilterSubjects cannot be empty";
    /// Several filters with the single-filter create subject.
    multiple_filters_not_allowed => 400, 10137, "consumer with multiple subject filters cannot use subject based API";
    /// The durable named in the subject differs from the request's.
    durable_name_not_match_subject => 400, 10017, "consumer name in subject does not match durable name in request";
    /// DURABLE.CREATE without a durable name in the body.
    durable_name_not_set => 400, 10018, "consumer expected to be durable but a durable name was not set";
    /// An ephemeral create request that names a durable.
    new_ephemeral_with_durable => 400, 10020, "consumer expected to be ephemeral but a durable name was set in request";
    /// The stream has its most consumers.
    max_consumers => 400, 10026, "maximum consumers limit reached";
    /// The account has its most streams.
    max_streams => 400, 10027, "maximum number of streams reached";
    /// JetStream is off.
    not_enabled => 503, 10076, "JetStream not enabled";
    /// JetStream is off for this account.
    not_enabled_for_account => 503, 10039, "JetStream not enabled for account";
    /// The server's storage of this kind holds more than its limit: publishes are refused.
    insufficient_resources => 503, 10023, "insufficient resources";
    /// Storage is full.
    storage_exceeded => 500, 10047, "insufficient storage resources available";
    /// Memory storage is full.
    memory_exceeded => 500, 10028, "insufficient memory resources available";
    /// A mirror with `first_seq`.
    mirror_with_first_seq => 400, 10143, "stream mirrors can not have first sequence configured";
    /// A mirror with subjects of its own.
    mirror_with_subjects => 400, 10034, "stream mirrors can not contain subjects";
    /// A mirror with sources.
    mirror_with_sources => 400, 10031, "stream mirrors can not also contain other sources";
    /// A mirror with both a filter and subject transforms.
    mirror_multiple_filters => 400, 10150, "mirror with multiple subject transforms cannot also have a single subject filter";
    /// A mirror transform whose source is not a subject.
    mirror_invalid_subject_filter => 400, 10151, "mirror subject filter is invalid";
    /// Two mirror transforms whose sources overlap.
    mirror_overlapping_filters => 400, 10152, "mirror subject filters can not overlap";
    /// A mirror of a name no stream can have.
    mirror_invalid_stream_name => 400, 10142, "mirrored stream name is invalid";
    /// A mirror whose max_msg_size is below its origin's.
    mirror_max_msg_size => 400, 10030, "stream mirror must have max message size >= source";
    /// A stream update that changes the mirror.
    mirror_not_updatable => 400, 10055, "stream mirror configuration can not be updated";
    /// A source of a name no stream can have.
    source_invalid_stream_name => 400, 10141, "sourced stream name is invalid";
    /// The same source twice.
    source_duplicate => 400, 10140, "duplicate source configuration detected";
    /// A stream whose max_msg_size is below a source's.
    source_max_msg_size => 400, 10046, "stream source must have max message size >= target";
    /// A source with both a filter and subject transforms.
    source_multiple_filters => 400, 10144, "source with multiple subject transforms cannot also have a single subject filter";
    /// A source transform whose source is not a subject.
    source_invalid_subject_filter => 400, 10145, "source subject filter is invalid";
    /// A source transform with a destination nats-server refuses.
    source_invalid_transform_destination => 400, 10146, "source transform destination is invalid";
    /// Two source transforms whose sources overlap.
    source_overlapping_filters => 400, 10147, "source filters can not overlap";
    /// A publish would take the account past its storage limits.
    account_resources_exceeded => 400, 10002, "resource limits exceeded for account";
    /// The account requires every stream to set `max_bytes`.
    stream_max_bytes_required => 400, 10113, "account requires a stream config to have max bytes set";
    /// The stream's `max_bytes` is above the account's per-stream limit.
    stream_max_stream_bytes_exceeded => 400, 10122, "stream max bytes exceeds account limit max stream bytes";
}

impl ApiError {
    /// A stream configuration that is not valid (10052), in the words given.
    pub fn invalid_config(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10052, text.to_string())
    }

    /// A consumer configuration that is not valid (10094).
    pub fn invalid_policy(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(400, 10094, text.to_string())
    }

    /// An external origin's deliver prefix with wildcards (10024).
    pub fn external_deliver_wildcards(prefix: &str) -> ApiError {
        ApiError::new(
            400,
            10024,
            format!("stream external delivery prefix {prefix} must not contain wildcards"),
        )
    }

    /// An external origin's API prefix inside the JetStream API (10021).
    pub fn external_api_overlap(prefix: &str, subject: &str) -> ApiError {
        ApiError::new(
            400,
            10021,
            format!("stream external api prefix {prefix} must not overlap with {subject}"),
        )
    }

    /// A stream that could not be created (10049).
    pub fn stream_create(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10049, text.to_string())
    }

    /// A stream that could not be updated (10069).
    pub fn stream_update(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10069, text.to_string())
    }

    /// A consumer that could not be created (10012).
    pub fn consumer_create(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10012, text.to_string())
    }

    /// A message the store refused, a limit reached under `discard: new` (10077).
    pub fn store_failed(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(503, 10077, text.to_string())
    }

    /// `Nats-Expected-Last-Sequence` or `-Last-Subject-Sequence` did not hold (10071).
    pub fn wrong_last_sequence(seq: u64) -> ApiError {
        ApiError::new(400, 10071, format!("wrong last sequence: {seq}"))
    }

    /// `Nats-Expected-Last-Msg-Id` did not hold (10070).
    pub fn wrong_last_msg_id(id: &str) -> ApiError {
        ApiError::new(400, 10070, format!("wrong last msg ID: {id}"))
    }

    /// A stream operation that failed in general (10051).
    pub fn stream_general(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10051, text.to_string())
    }

    /// A purge that failed or is not allowed (10110).
    pub fn purge_failed(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10110, text.to_string())
    }

    /// A delete that failed or is not allowed (10057).
    pub fn msg_delete_failed(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10057, text.to_string())
    }

    /// A rollup that is not allowed (10111).
    pub fn rollup_failed(text: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 10111, text.to_string())
    }

    /// No message with that sequence (10043).
    pub fn sequence_not_found(seq: u64) -> ApiError {
        ApiError::new(400, 10043, format!("sequence {seq} not found"))
    }

    /// max_ack_pending above the server's or the stream's consumer limit (10121).
    pub fn max_ack_pending_excess(limit: i64) -> ApiError {
        ApiError::new(
            400,
            10121,
            format!("consumer max ack pending exceeds system limit of {limit}"),
        )
    }

    /// A pull consumer's max_batch above the server's `max_request_batch` (10125).
    pub fn max_request_batch_exceeded(limit: i64) -> ApiError {
        ApiError::new(
            400,
            10125,
            format!("consumer max request batch exceeds server limit of {limit}"),
        )
    }

    /// A consumer name over the limit (10102).
    pub fn consumer_name_too_long(max: usize) -> ApiError {
        ApiError::new(
            400,
            10102,
            format!("consumer name is too long, maximum allowed is {max}"),
        )
    }
}
