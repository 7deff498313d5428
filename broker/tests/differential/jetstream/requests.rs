//! Response forms clients rely on: how an empty result is spelled.

use anyhow::ensure;
use serde_json::json;

use super::*;
use crate::{block_on, scenarios, Scenario, Target};

pub fn scenarios() -> Vec<Scenario> {
    scenarios![js_stream_names_without_a_match_are_null,]
}

fn js_stream_names_without_a_match_are_null(t: &Target) -> anyhow::Result<()> {
    let url = t.jetstream()?.client_url();
    block_on(async move {
        let c = connect(&url).await?;
        create_stream(&c, json!({"name": "RQN", "subjects": ["rqn.*"]})).await?;
        // A client that takes the first name of the list (the legacy `nats` crate looking up
        // the stream of a subject) depends on `null` here.
        let names = api(&c, "STREAM.NAMES", json!({"subject": "rqnone.x"})).await?;
        let expected = json!({"type": "io.nats.jetstream.api.v1.stream_names_response",
            "total": 0, "offset": 0, "limit": 1024, "streams": null});
        ensure!(names == expected, "names {names}");
        let names = api(&c, "STREAM.NAMES", json!({"subject": "rqn.a", "offset": 5})).await?;
        ensure!(
            names["streams"].is_null() && names["total"] == 1 && names["offset"] == 1,
            "names past the end {names}"
        );
        Ok(())
    })
}
