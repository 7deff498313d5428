create table account (
    id text primary key,
    owner text not null,
    balance bigint not null default 0,
    last_transaction_number bigint not null default 0,
    created_at bigint not null
);

-- one row per transaction number consumed: applied or rejected
create table ledger_entry (
    account_id text not null references account (id),
    number bigint not null,
    transaction_id text not null,
    kind text not null,
    amount bigint not null,
    outcome text not null,
    balance_after bigint not null,
    reason text,
    recorded_at bigint not null,
    primary key (account_id, number)
);

-- events that could not be processed (undecodable or invalid), kept for people to look at
create table dead_letter (
    id integer primary key autoincrement,
    subject text not null,
    stream_sequence bigint not null,
    payload blob not null,
    reason text not null,
    created_at bigint not null
);

create table outbox (
    seq integer primary key autoincrement,
    event_id text not null unique,
    subject text not null,
    payload blob not null,
    traceparent text,
    created_at bigint not null
);
