-- the accounts a statement can be asked for, from AccountOpened, with the running balance and
-- the last number of the account's sequence the projection took
create table statement_account (
    account_id text primary key,
    owner text not null,
    opened_at bigint not null,
    balance bigint not null default 0,
    last_transaction_number bigint not null default 0
);

-- one line per number of an account's sequence: an applied transaction (the balance moves) or
-- a rejected one (the balance stays, the reason is kept)
create table statement_line (
    account_id text not null references statement_account (account_id),
    number bigint not null,
    transaction_id text not null,
    kind text not null,
    amount bigint not null,
    outcome text not null,
    balance_after bigint not null,
    reason text,
    occurred_at bigint not null,
    primary key (account_id, number)
);
