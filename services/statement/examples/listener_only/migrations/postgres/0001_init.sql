-- who owns each account, from AccountOpened
create table owner (
    account_id text primary key,
    owner text not null,
    opened_at bigint not null
);
