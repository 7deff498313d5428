-- accounts this service has learned from AccountOpened, with the last number it handed out
create table account (
    id text primary key,
    last_number bigint not null default 0,
    opened_at bigint not null
);

create table transaction_record (
    id text primary key,
    account_id text not null references account (id),
    number bigint not null,
    kind text not null,
    amount bigint not null,
    status text not null default 'pending',
    reason text,
    created_at bigint not null,
    updated_at bigint not null,
    constraint transaction_record_account_number unique (account_id, number)
);

create table idempotency_key (
    key text primary key,
    transaction_id text not null,
    created_at bigint not null
);

create table outbox (
    seq bigserial primary key,
    event_id text not null unique,
    subject text not null,
    payload bytea not null,
    traceparent text,
    created_at bigint not null
);
