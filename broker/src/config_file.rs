//! The NATS configuration-file syntax, for the settings the broker knows.
