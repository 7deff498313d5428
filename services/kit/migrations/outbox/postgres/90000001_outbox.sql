-- The transactional outbox of a service that publishes (service_kit::outbox): events written in
-- the same transaction as the change that causes them, deleted once the broker acknowledged
-- them. Kit migrations take versions from 90000000 up, so a service's own stay below.
-- "if not exists": the account and transaction services created this table in their first
-- migration, before the kit shipped it.
create table if not exists outbox (
    seq bigserial primary key,
    event_id text not null unique,
    subject text not null,
    payload bytea not null,
    traceparent text,
    created_at bigint not null
);
