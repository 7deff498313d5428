#!/usr/bin/env bash
# Database per service: creates one login and one database for each service, owned by that
# login, with every other role's access revoked. Run once, by the postgres image's entrypoint,
# when the data directory is first initialised (/docker-entrypoint-initdb.d).
#
# Each login, password and database is read from the service's own DATABASE_URL (its Secret),
# so each credential is written down once: postgres://<login>:<password>@<host>[:<port>]/<database>.
# The password must be URL-safe as it stands (letters, digits, - . _ ~): it is not percent-decoded.
set -Eeuo pipefail

create_service_database() {
  local variable="$1" url rest login password database
  url="${!variable:?$variable is not set}"
  rest="${url#*://}"
  login="${rest%%:*}"
  rest="${rest#*:}"
  password="${rest%%@*}"
  rest="${rest#*@}"
  database="${rest#*/}"
  database="${database%%\?*}"
  if [[ -z "$login" || -z "$password" || -z "$database" || "$rest" != */* ]]; then
    echo "init-databases: $variable is not postgres://<login>:<password>@<host>/<database>" >&2
    exit 1
  fi
  echo "init-databases: database \"$database\" owned by login \"$login\""
  psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=login="$login" --set=password="$password" --set=database="$database" <<'SQL'
create role :"login" login password :'password';
create database :"database" owner :"login";
revoke all on database :"database" from public;
SQL
}

create_service_database ACCOUNT_DATABASE_URL
create_service_database TRANSACTION_DATABASE_URL
create_service_database STATEMENT_DATABASE_URL
