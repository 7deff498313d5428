//! Fuzzes event payload decoding as every listener does it (`Envelope::<E>::decode` for each
//! event type): a payload decodes and survives encoding and decoding again, or is an error
//! (poison to the runner); a panic or a changed round trip is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(problem) = test_support::corpus::check_event_payload(data) {
        panic!("{problem}");
    }
});
