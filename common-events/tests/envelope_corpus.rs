//! The checked-in corpus of the `envelope` fuzz target (`common-events/fuzz`), and seeded
//! mutations of it, through the decoding every listener does: each payload decodes (and
//! survives encoding and decoding again) or is an error, which the runner treats as poison
//! (terminated and handed to `on_undecodable`); nothing panics. See `docs/fuzzing.md`.

use std::path::Path;

use test_support::corpus;

/// How many mutants the test adds to the corpus: decoding is cheap, so many.
const MUTANTS: usize = 20_000;

#[test]
fn every_corpus_payload_and_its_mutants_decodes_or_is_poison_without_panicking() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = corpus::read(&corpus::dir(&fuzz, "envelope")).unwrap();
    assert!(seeds.len() >= 30, "only {} seeds", seeds.len());
    let mut failures = Vec::new();
    let mut decoded = 0;
    for (name, payload) in corpus::grow(&seeds, MUTANTS, 0x5eed_e7e7) {
        match std::panic::catch_unwind(|| corpus::check_event_payload(&payload)) {
            Ok(Ok(types)) => decoded += types,
            Ok(Err(problem)) => failures.push(format!("{name}: {problem}")),
            Err(_) => failures.push(format!("{name}: decoding panicked")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // About one mutant in twenty still decodes: the mutations reach past the JSON syntax.
    assert!(decoded > MUTANTS / 100, "only {decoded} payloads decoded");
}

#[test]
fn the_valid_seeds_decode_as_their_own_type_only() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = corpus::read(&corpus::dir(&fuzz, "envelope")).unwrap();
    for valid in [
        "account_opened",
        "transaction_created",
        "transaction_applied",
        "transaction_rejected",
    ] {
        let (_, payload) = seeds.iter().find(|(name, _)| name == valid).unwrap();
        assert_eq!(corpus::check_event_payload(payload), Ok(1), "{valid}");
    }
}
