-- TransactionCreated events whose predecessor did not arrive in time (or while too many gaps
-- were open): taken off the broker (terminated there) and kept here, then applied in number
-- order when their predecessor is recorded. Two rows may claim one number: the first parked is
-- applied, the others are conflicts.
create table parked_transaction (
    account_id text not null references account (id),
    number bigint not null,
    transaction_id text not null,
    kind text not null,
    amount bigint not null,
    traceparent text,
    subject text not null,
    stream_sequence bigint not null,
    parked_at bigint not null,
    primary key (account_id, number, transaction_id)
);

-- a conflict is dead-lettered once however often its message is delivered
create index dead_letter_by_message on dead_letter (subject, stream_sequence);
