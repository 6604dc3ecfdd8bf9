#!/bin/sh
# Entry point of the ledger's PostgreSQL in deploy/compose.yaml (bind-mounted into the image
# deploy/images.sh makes from Debian's postgresql-15). Started as root: reads the ledger role's
# password from the root-only secret file, creates the cluster, the role and the database on
# the first start, then runs the server as postgres.
#
# During the first start the server listens on its Unix socket only, so the TCP health check
# (pg_isready -h 127.0.0.1) cannot report ready before the role and the database exist.
set -eu
SECRET=/run/edxml-hub-secrets/ledger-password
[ -s "$SECRET" ] || { echo "postgres entrypoint: $SECRET is missing or empty" >&2; exit 3; }
: "${POSTGRES_USER:=edxml_hub}" "${POSTGRES_DB:=edxml_hub}"
BIN=/usr/lib/postgresql/15/bin
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/postgresql "$@"; }
install -d -m 0700 -o postgres -g postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$PGDATA" --auth-local=peer --auth-host=scram-sha-256 -E UTF8 \
        --locale=C.UTF-8 >/dev/null
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
    # The password goes through a psql variable (:'pw'), never on a command line.
    PW="$(cat "$SECRET")"
    # shellcheck disable=SC2016
    as_pg env PW="$PW" sh -c 'psql -v ON_ERROR_STOP=1 -q -d postgres -v pw="$PW" -v role="$1" -v db="$2" <<SQL
CREATE ROLE :"role" LOGIN PASSWORD :'"'"'pw'"'"';
CREATE DATABASE :"db" OWNER :"role";
SQL' sh "$POSTGRES_USER" "$POSTGRES_DB"
    unset PW
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -w stop >/dev/null
    echo "postgres entrypoint: created the ledger database $POSTGRES_DB for role $POSTGRES_USER"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/postgresql \
    "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*'
