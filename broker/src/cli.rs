//! The command line, compatible with nats-server's and NATS Streaming's flags.
