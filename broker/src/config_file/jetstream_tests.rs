//! The `jetstream` setting's forms: what each sets, and what is refused with which message.

use super::tests::{error, load};

#[test]
fn jetstream_words_and_booleans_switch_it() {
    for (text, on) in [
        ("jetstream: enabled", true),
        ("jetstream: \"Enable\"", true),
        ("jetstream: on", true),
        ("jetstream: disabled", false),
        ("jetstream: false", false),
    ] {
        assert_eq!(load(text).unwrap().jetstream, on, "{text}");
    }
    // A quoted "on" is a string, and the only strings are enabled and disabled.
    assert!(error("jetstream: \"on\"").contains("expected enabled, disabled"));
}

#[test]
fn quoted_sizes_take_one_binary_unit_as_nats_server_reads_them() {
    let opts = load("jetstream { max_mem: \"512M\", max_file: \"2T\" }").unwrap();
    assert_eq!(opts.jetstream_max_memory, Some(512 << 20));
    assert_eq!(opts.jetstream_max_store, Some(2 << 40));
    let opts = load("jetstream { max_mem: \"\", max_file: \"-1G\" }").unwrap();
    assert_eq!(opts.jetstream_max_memory, Some(0));
    assert_eq!(opts.jetstream_max_store, Some(-(1 << 30)));
    // Bare sizes follow the file syntax: 1GB is binary, 1G decimal.
    let opts = load("jetstream { max_mem: 1GB, max_file: 1G }").unwrap();
    assert_eq!(opts.jetstream_max_memory, Some(1 << 30));
    assert_eq!(opts.jetstream_max_store, Some(1_000_000_000));
    for bad in ["\"1GB\"", "\"512\"", "\"10g\"", "\"G\""] {
        let text = format!("jetstream {{ max_file_store: {bad} }}");
        assert!(error(&text).contains("followed by K, M, G or T"), "{bad}");
    }
}

#[test]
fn the_domain_is_kept_and_must_be_a_plain_name() {
    let opts = load("jetstream { domain: hub }").unwrap();
    assert_eq!(opts.jetstream_domain.as_deref(), Some("hub"));
    assert_eq!(
        load("jetstream { domain: \"\" }").unwrap().jetstream_domain,
        None
    );
    for bad in ["a.b", "a*", "x>", "\"a b\""] {
        let text = format!("jetstream {{ domain: {bad} }}");
        assert!(error(&text).contains("invalid domain name"), "{bad}");
    }
}

#[test]
fn cluster_only_settings_are_ignored_with_a_warning() {
    let text = "jetstream {\n  unique_tag: \"az:\"\n  extension_hint: will_extend\n  \
                request_queue_limit: 100\n  max_outstanding_catchup: 64MB\n  cipher: aes\n}";
    let (opts, warnings) =
        super::tests::load_with_warnings(text).expect("nats-server starts with these");
    assert!(opts.jetstream);
    for key in [
        "unique_tag",
        "extension_hint",
        "request_queue_limit",
        "max_outstanding_catchup",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(key)),
            "{key}: {warnings:?}"
        );
    }
}

#[test]
fn encryption_at_rest_is_refused_naming_the_setting() {
    for key in [
        "key",
        "ek",
        "encryption_key",
        "prev_key",
        "prev_ek",
        "prev_encryption_key",
    ] {
        let message = error(&format!(
            "jetstream {{ cipher: chacha, {key}: \"s3cr3t\" }}"
        ));
        assert!(message.contains(&format!("'{key}'")), "{message}");
        assert!(
            message.contains("encryption at rest is not supported"),
            "{message}"
        );
    }
    assert!(error("jetstream { cipher: des }").contains("unknown cipher type \"des\""));
}

#[test]
fn unknown_jetstream_settings_are_refused() {
    for text in [
        "jetstream { bogus: 1 }",
        "jetstream { max_buffered_msgs: 100 }",
        "jetstream { strict: true }",
        "jetstream { limits { bogus: 1 } }",
    ] {
        assert!(error(text).contains("unknown setting"), "{text}");
    }
}

#[test]
fn an_account_block_sets_its_limits_and_a_word_none() {
    use crate::options::AccountJetStreamLimits;
    let account = |jetstream: &str| {
        let text = format!("accounts {{ A {{ jetstream: {jetstream} }} }}");
        let opts = load(&text).unwrap();
        let a = &opts.accounts[0];
        (a.jetstream, a.jetstream_limits)
    };
    let none = AccountJetStreamLimits::default();
    assert_eq!(account("enabled"), (true, none));
    assert_eq!(account("true"), (true, none));
    assert_eq!(account("disabled"), (false, none));
    let (on, limits) = account(
        "{ max_mem: 1MB, max_file: 1GB, max_streams: 2, max_consumers: 3, max_ack_pending: 4, \
         mem_max_stream_bytes: 5, disk_max_stream_bytes: 6, max_bytes_required: true }",
    );
    let expected = AccountJetStreamLimits {
        max_memory: 1 << 20,
        max_storage: 1 << 30,
        max_streams: 2,
        max_consumers: 3,
        max_ack_pending: 4,
        memory_max_stream_bytes: 5,
        storage_max_stream_bytes: 6,
        max_bytes_required: true,
        tiered: false,
    };
    assert_eq!((on, limits), (true, expected));
    // nats-server's other spellings.
    let (_, limits) =
        account("{ memory: 10, store: 20, streams: 1, consumers: 2, max_bytes: true }");
    assert_eq!(
        (
            limits.max_memory,
            limits.max_storage,
            limits.max_streams,
            limits.max_consumers
        ),
        (10, 20, 1, 2)
    );
    assert!(limits.max_bytes_required);
    let (_, limits) = account("{ disk: 7, memory_max_stream_bytes: 8, store_max_stream_bytes: 9 }");
    assert_eq!(limits.max_storage, 7);
    assert_eq!(limits.memory_max_stream_bytes, 8);
    assert_eq!(limits.storage_max_stream_bytes, 9);
    let message = error("accounts { A { jetstream: { max_mem: \"1G\" } } }");
    assert!(message.contains("expected a number"), "{message}");
    let message = error("accounts { A { jetstream: { max_bytes_required: 5 } } }");
    assert!(message.contains("expected true or false"), "{message}");
    assert!(error("accounts { A { jetstream: { bogus: 1 } } }").contains("unknown setting"));
    assert!(error("accounts { A { jetstream: maybe } }").contains("expected enabled"));
}

#[test]
fn the_store_directory_is_set_at_the_top_level_or_in_the_block_not_both() {
    let top = load("store_dir: \"/data/a\"\njetstream: enabled").unwrap();
    assert_eq!(top.store_dir, Some(std::path::PathBuf::from("/data/a")));
    let block = load("jetstream { store: /data/b }").unwrap();
    assert_eq!(block.store_dir, Some(std::path::PathBuf::from("/data/b")));
    let both = error("storedir: /data/a\njetstream { store_dir: /data/b }");
    assert!(both.contains("duplicate 'store_dir'"), "{both}");
    // One key repeated at one level: the last counts, as in nats-server's maps.
    let again = load("store_dir: /a\nstore_dir: /b").unwrap();
    assert_eq!(again.store_dir, Some(std::path::PathBuf::from("/b")));
}
