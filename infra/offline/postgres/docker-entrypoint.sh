#!/bin/bash
# Entry point of the offline PostgreSQL image (infra/offline/postgres-image.sh): Debian's
# PostgreSQL started the way the official postgres image's docker-entrypoint.sh starts it, for
# what testcontainers and our tests use of it:
#   - a first argument that is an option (`-c fsync=off`) is one for `postgres`;
#   - as root, it makes $PGDATA the postgres user's and runs again as that user;
#   - on an empty $PGDATA: initdb (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_INITDB_ARGS), a
#     `host all all all` line with POSTGRES_HOST_AUTH_METHOD (default scram-sha-256, which needs
#     POSTGRES_PASSWORD), listen_addresses '*'; then a temporary server on the Unix socket only,
#     whose log goes to stdout, creates POSTGRES_DB and runs /docker-entrypoint-initdb.d/*.sql
#     and *.sh once, and stops;
#   - finally `exec postgres "$@"`, whose log goes to stderr.
# So "database system is ready to accept connections" is printed on stdout (the temporary server)
# and then on stderr (the real one) on a first start, as testcontainers-modules' Postgres waits for.
set -Eeuo pipefail

log() { printf '%s\n' "$*"; }

# psql_init ARGS...: psql as the superuser on the temporary server, stopping at the first error.
psql_init() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

init_cluster() {
  local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [[ -z ${POSTGRES_PASSWORD:-} && $auth != trust ]]; then
    cat >&2 <<'MSG'
error: the database is uninitialized and no superuser password is set: set POSTGRES_PASSWORD,
or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one (tests only)
MSG
    exit 1
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, as in the official image
  if [[ -n ${POSTGRES_PASSWORD:-} ]]; then
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
      ${POSTGRES_INITDB_ARGS:-}
  else
    initdb --username="$POSTGRES_USER" ${POSTGRES_INITDB_ARGS:-}
  fi
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
}

# run_init_scripts: what /docker-entrypoint-initdb.d holds, in name order.
run_init_scripts() {
  local file
  for file in /docker-entrypoint-initdb.d/*; do
    case $file in
      *.sh)
        log "running $file"
        if [[ -x $file ]]; then "$file"; else
          # shellcheck disable=SC1090
          . "$file"
        fi
        ;;
      *.sql)
        log "running $file"
        psql_init --dbname "$POSTGRES_DB" -f "$file"
        ;;
      *) if [[ -e $file ]]; then log "ignoring $file"; fi ;;
    esac
  done
}

# init_database ARGS...: initdb, then the temporary server (with the same `postgres` ARGS,
# listening on no TCP address) for POSTGRES_DB and the init scripts.
init_database() {
  init_cluster
  # pg_ctl without -l starts the server with its stderr joined to pg_ctl's stdout.
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -w \
    -o "$(printf '%q ' "$@" -c "listen_addresses=")" start
  if [[ $POSTGRES_DB != postgres ]]; then
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
select format('create database %I', :'db')
where not exists (select from pg_database where datname = :'db') \gexec
SQL
  fi
  run_init_scripts
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
  log "PostgreSQL init process complete; ready for start up."
}

if [[ ${1:-} == -* ]]; then
  set -- postgres "$@"
fi
if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

: "${PGDATA:?PGDATA must be set}"
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  init_database "${@:2}"
fi
exec "$@"
