//! Publisher and topology scenarios.

use anyhow::Context;
use common_events::topology::{self, ConsumerSpec};
use common_events::{EncodedEvent, EventId, PublishError, Publisher, TraceContext};
use test_support::scenario;
use test_support::{Scenario, Target};

use test_support::jetstream::{connect, consumer, created};

pub const SCENARIOS: &[Scenario] = &[
    scenario!(ensure_creates_streams_and_consumers_and_can_run_twice),
    scenario!(publish_awaits_the_pub_ack_and_a_republish_is_deduplicated),
    scenario!(publishing_on_a_subject_without_a_stream_is_an_ack_error),
    scenario!(trace_context_travels_in_the_traceparent_header),
];

async fn ensure_creates_streams_and_consumers_and_can_run_twice(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let js = connect(&broker.url()).await?;
    let consumers = [ConsumerSpec::new(
        topology::TRANSACTIONS,
        "publisher-test",
        topology::subjects::TRANSACTION_CREATED,
    )];
    topology::ensure(&js, &consumers).await?;
    topology::ensure(&js, &consumers).await?;
    for spec in topology::STREAMS {
        let mut stream = js.get_stream(spec.name).await.context(spec.name)?;
        let info = stream.info().await?;
        assert_eq!(
            info.config.subjects,
            spec.subjects
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
    }
    let info = consumer(&js, "publisher-test").await?.get_info().await?;
    assert_eq!(info.config.filter_subject, "transactions.created");
    assert_eq!(
        info.config.max_deliver, -1,
        "ordering-critical consumers never give up"
    );
    Ok(())
}

async fn publish_awaits_the_pub_ack_and_a_republish_is_deduplicated(
    t: Target,
) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let js = connect(&broker.url()).await?;
    topology::ensure(&js, &[]).await?;
    let publisher = Publisher::new(js.clone());
    let event = created(1);
    let first = publisher.publish(&event, None).await?;
    let again = publisher.publish(&event, None).await?;
    assert!(!first.duplicate);
    assert!(again.duplicate, "the same event id must be deduplicated");
    assert_eq!(again.sequence, first.sequence);
    let mut stream = js.get_stream("TRANSACTIONS").await?;
    assert_eq!(stream.info().await?.state.messages, 1);
    Ok(())
}

async fn publishing_on_a_subject_without_a_stream_is_an_ack_error(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let js = connect(&broker.url()).await?;
    let publisher = Publisher::new(js);
    let event = EncodedEvent {
        id: EventId::new(),
        subject: "nowhere.at.all".into(),
        payload: "{}".into(),
        trace: None,
    };
    let err = publisher.publish_encoded(&event).await.unwrap_err();
    assert!(matches!(err, PublishError::Ack { .. }), "{err}");
    Ok(())
}

async fn trace_context_travels_in_the_traceparent_header(t: Target) -> anyhow::Result<()> {
    let broker = t.broker.start()?;
    let js = connect(&broker.url()).await?;
    topology::ensure(&js, &[]).await?;
    let trace = TraceContext::new_root();
    let published = Publisher::new(js.clone())
        .publish(&created(1), Some(trace))
        .await?;
    let stream = js.get_stream("TRANSACTIONS").await?;
    let raw = stream.get_raw_message(published.sequence).await?;
    let header = raw
        .headers
        .get("traceparent")
        .context("no traceparent header")?;
    assert_eq!(TraceContext::parse(header.as_str()), Some(trace));
    Ok(())
}
