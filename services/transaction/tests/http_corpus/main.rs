//! The checked-in corpus of the `transaction_http` fuzz target (`services/fuzz`), and seeded
//! mutations of it, through the service's API router on SQLite: no request is answered with a
//! `5xx` or panics, and every `4xx` has the JSON error body. See `docs/fuzzing.md`.

mod app;

use std::path::Path;

use test_support::corpus;

/// How many mutants the test adds to the corpus: a few seconds of requests.
const MUTANTS: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_request_and_its_mutants_get_a_4xx_json_error_or_a_success() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let seeds = corpus::read(&corpus::dir(&fuzz, "transaction_http")).unwrap();
    assert!(seeds.len() >= 30, "only {} seeds", seeds.len());
    let dir = tempfile::tempdir().unwrap();
    let (router, vars) = app::router(dir.path()).await.unwrap();
    let statuses = corpus::check_http_corpus(&router, &vars, &seeds, MUTANTS, 0x5eed_7a0c).await;
    eprintln!("answers by status: {statuses:?}");
}
