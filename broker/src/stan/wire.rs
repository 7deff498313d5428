//! The messages NATS Streaming clients and servers exchange, as protocol buffers (proto3) over
//! core NATS subjects: each request is one message's payload, each answer the reply's.
//!
//! The field numbers and types follow NATS Streaming's published protocol (`pb/protocol.proto`
//! of its clients); the structs here are written for this broker with `prost`'s derive. Proto3
//! omits default values on the wire (empty strings, zero numbers, `false`), and a decoder skips
//! fields it does not know, so a newer client's extra fields are no error.

use prost::Message;

/// Why a payload is not the message expected.
pub type DecodeError = prost::DecodeError;

/// A message published by a client (`<pubPrefix>.<subject>`): answered by a [`PubAck`].
#[derive(Clone, PartialEq, Message)]
pub struct PubMsg {
    /// The publishing client's ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// The publisher's unique ID for this message; the [`PubAck`] carries it back.
    #[prost(string, tag = "2")]
    pub guid: String,
    /// The channel.
    #[prost(string, tag = "3")]
    pub subject: String,
    /// An optional reply subject, delivered with the message.
    #[prost(string, tag = "4")]
    pub reply: String,
    /// The payload.
    #[prost(bytes = "vec", tag = "5")]
    pub data: Vec<u8>,
    /// The connection's ID (from its [`ConnectRequest`]); newer clients send it instead of, or
    /// beside, the client ID.
    #[prost(bytes = "vec", tag = "6")]
    pub conn_id: Vec<u8>,
    /// An optional SHA-256 of `data`.
    #[prost(bytes = "vec", tag = "10")]
    pub sha256: Vec<u8>,
}

/// The answer to a [`PubMsg`]: stored, or why not.
#[derive(Clone, PartialEq, Message)]
pub struct PubAck {
    /// The [`PubMsg::guid`] acknowledged.
    #[prost(string, tag = "1")]
    pub guid: String,
    /// Empty when stored.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// A message delivered to a subscription's inbox.
#[derive(Clone, PartialEq, Message)]
pub struct MsgProto {
    /// Its sequence in the channel.
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// The channel.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// The publisher's reply subject, if any.
    #[prost(string, tag = "3")]
    pub reply: String,
    /// The payload.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    /// When the server received it, in nanoseconds since the Unix epoch.
    #[prost(int64, tag = "5")]
    pub timestamp: i64,
    /// Whether it was delivered to this subscription before.
    #[prost(bool, tag = "6")]
    pub redelivered: bool,
    /// How many times it was redelivered.
    #[prost(uint32, tag = "7")]
    pub redelivery_count: u32,
    /// An optional IEEE CRC-32 of the message.
    #[prost(uint32, tag = "10")]
    pub crc32: u32,
}

/// A subscriber's acknowledgement of a delivered message, sent to its subscription's ack inbox.
#[derive(Clone, PartialEq, Message)]
pub struct Ack {
    /// The channel.
    #[prost(string, tag = "1")]
    pub subject: String,
    /// The sequence acknowledged.
    #[prost(uint64, tag = "2")]
    pub sequence: u64,
}

/// A client's connect request, sent to `_STAN.discover.<cluster>`.
#[derive(Clone, PartialEq, Message)]
pub struct ConnectRequest {
    /// The client ID: unique among the live connections of the cluster.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// Where the server sends its heartbeats (the client answers each).
    #[prost(string, tag = "2")]
    pub heartbeat_inbox: String,
    /// The client's protocol version (0, or 1 for clients that ping).
    #[prost(int32, tag = "3")]
    pub protocol: i32,
    /// A unique ID of this connection.
    #[prost(bytes = "vec", tag = "4")]
    pub conn_id: Vec<u8>,
    /// How often the client wants to ping, in seconds.
    #[prost(int32, tag = "5")]
    pub ping_interval: i32,
    /// Unanswered pings after which the client considers the connection lost.
    #[prost(int32, tag = "6")]
    pub ping_max_out: i32,
}

/// The server's answer to a [`ConnectRequest`]: the subjects of this connection's requests, or
/// an error.
#[derive(Clone, PartialEq, Message)]
pub struct ConnectResponse {
    /// Publishes go to `<pub_prefix>.<channel>`.
    #[prost(string, tag = "1")]
    pub pub_prefix: String,
    /// Where [`SubscriptionRequest`]s go.
    #[prost(string, tag = "2")]
    pub sub_requests: String,
    /// Where unsubscribes ([`UnsubscribeRequest`]) go.
    #[prost(string, tag = "3")]
    pub unsub_requests: String,
    /// Where [`CloseRequest`]s go.
    #[prost(string, tag = "4")]
    pub close_requests: String,
    /// Empty when connected.
    #[prost(string, tag = "5")]
    pub error: String,
    /// Where subscription closes (an [`UnsubscribeRequest`] that keeps a durable) go.
    #[prost(string, tag = "6")]
    pub sub_close_requests: String,
    /// Where [`Ping`]s go.
    #[prost(string, tag = "7")]
    pub ping_requests: String,
    /// How often the client is to ping, in seconds.
    #[prost(int32, tag = "8")]
    pub ping_interval: i32,
    /// Unanswered pings after which the client is to consider the connection lost.
    #[prost(int32, tag = "9")]
    pub ping_max_out: i32,
    /// The server's protocol version.
    #[prost(int32, tag = "10")]
    pub protocol: i32,
    /// Reserved for signing; unused.
    #[prost(string, tag = "100")]
    pub public_key: String,
}

/// A client's ping.
#[derive(Clone, PartialEq, Message)]
pub struct Ping {
    /// The connection's ID.
    #[prost(bytes = "vec", tag = "1")]
    pub conn_id: Vec<u8>,
}

/// The answer to a [`Ping`]: empty while the connection is known, else why not.
#[derive(Clone, PartialEq, Message)]
pub struct PingResponse {
    /// Empty when the connection is known.
    #[prost(string, tag = "1")]
    pub error: String,
}

/// Where a new subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StartPosition {
    /// Only messages published from now on.
    NewOnly = 0,
    /// The channel's last message, then new ones.
    LastReceived = 1,
    /// Messages received at most `start_time_delta` nanoseconds ago.
    TimeDeltaStart = 2,
    /// From `start_sequence`.
    SequenceStart = 3,
    /// Every message the channel still has.
    First = 4,
}

/// A client's subscription request: answered by a [`SubscriptionResponse`].
#[derive(Clone, PartialEq, Message)]
pub struct SubscriptionRequest {
    /// The client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// The channel.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// The queue group, if any.
    #[prost(string, tag = "3")]
    pub q_group: String,
    /// Where messages are delivered.
    #[prost(string, tag = "4")]
    pub inbox: String,
    /// Unacknowledged messages in flight at most.
    #[prost(int32, tag = "5")]
    pub max_in_flight: i32,
    /// Seconds to wait for an ack before redelivering.
    #[prost(int32, tag = "6")]
    pub ack_wait_in_secs: i32,
    /// The durable name, if any: the subscription's position survives the client.
    #[prost(string, tag = "7")]
    pub durable_name: String,
    /// Where it starts ([`StartPosition`]; an unknown value is kept as a number).
    #[prost(enumeration = "StartPosition", tag = "10")]
    pub start_position: i32,
    /// With [`StartPosition::SequenceStart`]: the first sequence.
    #[prost(uint64, tag = "11")]
    pub start_sequence: u64,
    /// With [`StartPosition::TimeDeltaStart`]: how far back, in nanoseconds.
    #[prost(int64, tag = "12")]
    pub start_time_delta: i64,
}

/// The answer to a [`SubscriptionRequest`] or an [`UnsubscribeRequest`].
#[derive(Clone, PartialEq, Message)]
pub struct SubscriptionResponse {
    /// Where the subscriber sends its [`Ack`]s.
    #[prost(string, tag = "2")]
    pub ack_inbox: String,
    /// Empty on success.
    #[prost(string, tag = "3")]
    pub error: String,
}

/// A client's unsubscribe (or subscription close) request.
#[derive(Clone, PartialEq, Message)]
pub struct UnsubscribeRequest {
    /// The client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// The channel.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// The subscription's ack inbox, which names it.
    #[prost(string, tag = "3")]
    pub inbox: String,
    /// The durable name, if any.
    #[prost(string, tag = "4")]
    pub durable_name: String,
}

/// A client's close request.
#[derive(Clone, PartialEq, Message)]
pub struct CloseRequest {
    /// The client ID.
    #[prost(string, tag = "1")]
    pub client_id: String,
}

/// The answer to a [`CloseRequest`].
#[derive(Clone, PartialEq, Message)]
pub struct CloseResponse {
    /// Empty on success.
    #[prost(string, tag = "1")]
    pub error: String,
}

impl SubscriptionRequest {
    /// The start position, or `None` for a number no [`StartPosition`] has.
    pub fn start(&self) -> Option<StartPosition> {
        StartPosition::try_from(self.start_position).ok()
    }
}

/// Decodes a `M` from a payload; a malformed one is an error, never a panic.
pub fn decode<M: Message + Default>(payload: &[u8]) -> Result<M, DecodeError> {
    M::decode(payload)
}

/// Encodes `message` for a payload.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_left_off_the_wire_and_fields_carry_their_numbers() {
        let ack = PubAck {
            guid: "g1".into(),
            error: String::new(),
        };
        assert_eq!(encode(&ack), [0x0a, 0x02, b'g', b'1']);
        assert!(encode(&CloseResponse::default()).is_empty());
        let msg = MsgProto {
            sequence: 300,
            subject: "a".into(),
            data: b"x".to_vec(),
            timestamp: 1,
            redelivered: true,
            redelivery_count: 2,
            ..MsgProto::default()
        };
        let wire = [
            0x08, 0xac, 0x02, // 1: sequence 300 as a varint
            0x12, 0x01, b'a', // 2: subject
            0x22, 0x01, b'x', // 4: data
            0x28, 0x01, // 5: timestamp
            0x30, 0x01, // 6: redelivered
            0x38, 0x02, // 7: redelivery count
        ];
        assert_eq!(encode(&msg), wire);
        assert_eq!(decode::<MsgProto>(&wire).unwrap(), msg);
    }

    #[test]
    fn high_field_numbers_and_the_start_position_enum_round_trip() {
        let response = ConnectResponse {
            public_key: "k".into(),
            ..ConnectResponse::default()
        };
        // Field 100, wire type 2: the tag 802 is the varint a2 06.
        assert_eq!(encode(&response), [0xa2, 0x06, 0x01, b'k']);
        let request = SubscriptionRequest {
            subject: "orders".into(),
            start_position: StartPosition::First as i32,
            ..SubscriptionRequest::default()
        };
        let wire = encode(&request);
        assert_eq!(&wire[wire.len() - 2..], [0x50, 0x04]);
        let back: SubscriptionRequest = decode(&wire).unwrap();
        assert_eq!(back.start(), Some(StartPosition::First));
        let unknown = SubscriptionRequest {
            start_position: 9,
            ..request
        };
        let back: SubscriptionRequest = decode(&encode(&unknown)).unwrap();
        assert_eq!(
            back.start(),
            None,
            "an unknown position is kept, not guessed"
        );
    }

    #[test]
    fn a_real_clients_connect_request_decodes() {
        // What node-nats-streaming 0.3.2 sent to `_STAN.discover.test` for client `client-1`.
        let captured = "0a08636c69656e742d31121d5f494e424f582e485334504f553559474549324a44\
                        413835323145453618012216485334504f553559474549324a44413835323145\
                        524f28053003";
        let bytes: Vec<u8> = (0..captured.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&captured[i..i + 2], 16).unwrap())
            .collect();
        let request: ConnectRequest = decode(&bytes).unwrap();
        assert_eq!(request.client_id, "client-1");
        assert_eq!(request.heartbeat_inbox, "_INBOX.HS4POU5YGEI2JDA8521EE6");
        assert_eq!(request.protocol, 1);
        assert_eq!(request.conn_id, b"HS4POU5YGEI2JDA8521ERO");
        assert_eq!((request.ping_interval, request.ping_max_out), (5, 3));
        assert_eq!(encode(&request), bytes, "and encodes back byte for byte");
    }

    #[test]
    fn unknown_fields_are_skipped_and_malformed_payloads_are_errors() {
        // A PubAck with an extra field 15 (a varint) a newer peer might send.
        let wire = [0x0a, 0x01, b'g', 0x78, 0x05];
        let ack: PubAck = decode(&wire).unwrap();
        assert_eq!(ack.guid, "g");
        for bad in [
            &[0x0a, 0x05, b'g'][..], // a length past the end
            &[0x0a, 0x01, 0xff][..], // a string that is not UTF-8
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..], // varint overflow
            &[0x0f][..],             // wire type 7 does not exist
        ] {
            assert!(decode::<PubAck>(bad).is_err(), "{bad:x?}");
        }
    }
}
