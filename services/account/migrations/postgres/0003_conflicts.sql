-- one row per message found to be a conflict, so that however many replicas or redeliveries
-- meet it, it is dead-lettered and rejected once
create table conflict (
    subject text not null,
    stream_sequence bigint not null,
    account_id text not null,
    number bigint not null,
    transaction_id text not null,
    recorded_at bigint not null,
    primary key (subject, stream_sequence)
);
