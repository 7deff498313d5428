-- the same name for the same idea in every service's database: an account's last number
alter table account rename column last_number to last_transaction_number;
