-- keys expire after IDEMPOTENCY_KEY_RETENTION; the sweep finds the old ones by age
create index idempotency_key_created_at on idempotency_key (created_at);
