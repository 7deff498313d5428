//! Fuzzes the transaction service's HTTP request decoding: each input is an HTTP case file (see
//! `test_support::corpus`) sent to the service's API router on SQLite; a `5xx`, a panic or a
//! `4xx` without the JSON error body is a finding.
#![no_main]

#[path = "../../transaction/tests/http_corpus/app.rs"]
mod app;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use services_fuzz::Harness;

fuzz_target!(|data: &[u8]| {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS
        .get_or_init(|| Harness::new(app::router))
        .check(data);
});
