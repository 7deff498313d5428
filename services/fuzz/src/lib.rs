//! What the services' HTTP fuzz targets share: a service's API router built once on a SQLite
//! database in a temporary directory, and a runtime to send each input to it through
//! `test_support::corpus::check_http` (the check the corpus tests make).

use std::future::Future;
use std::path::Path;

use axum::Router;
use test_support::corpus;

/// A service's router with the runtime it runs on and the corpus variables (`{account}`).
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    vars: Vec<(&'static str, String)>,
}

impl Harness {
    /// Builds the router with `build` (a service's `tests/http_corpus/app.rs` `router`) on a
    /// temporary directory that lives as long as the process (a fuzzer never drops its harness).
    pub fn new<F>(build: impl FnOnce(&'static Path) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<(Router, Vec<(&'static str, String)>)>>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let dir: &'static Path = Box::leak(Box::new(dir)).path();
        let (router, vars) = runtime.block_on(build(dir)).expect("the service's router");
        Self {
            runtime,
            router,
            vars,
        }
    }

    /// Sends HTTP case `data` to the router; panics (a finding) on a `5xx`, a panic, or a
    /// `4xx` without the JSON error body.
    pub fn check(&self, data: &[u8]) {
        let checked = corpus::check_http(&self.router, data, &self.vars);
        if let Err(problem) = self.runtime.block_on(checked) {
            panic!("{problem}");
        }
    }
}
