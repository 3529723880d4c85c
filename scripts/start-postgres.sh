#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 and print its SQLAlchemy URL on stdout.
#
#   scripts/start-postgres.sh [DIR]      start (cluster in DIR/data, default: a new temp dir)
#   scripts/start-postgres.sh --stop DIR stop the server started in DIR and remove DIR
#
# Needs PostgreSQL's server binaries (Debian: apt-get install -y postgresql); PG_BIN may name
# their directory. As root, the cluster runs as the `postgres` user (initdb refuses root), so
# DIR must be reachable by that user (a new directory under /tmp is).
# Trust authentication, fsync off, a free port, a database named poisonguard: for tests only.
# Everything but the URL goes to stderr.
set -euo pipefail

log() { echo "start-postgres: $*" >&2; }

find_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
    log "no PostgreSQL server binaries (initdb) found; install them (apt-get install -y postgresql) or set PG_BIN"
    exit 1
}

BIN=$(find_bin)
if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        log "running as root but there is no 'postgres' user to run the server as"
        exit 1
    fi
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

if [ "${1:-}" = "--stop" ]; then
    dir=${2:?usage: start-postgres.sh --stop DIR}
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        log "$dir: no cluster made by this script (no data/PG_VERSION); not touching it"
        exit 1
    fi
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    fi
    rm -rf -- "$dir"
    exit 0
fi

dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/poisonguard-pg.XXXXXX")}
mkdir -p "$dir"
chmod 755 "$dir"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi

as_pg "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
    || { log "initdb failed:"; cat "$dir/initdb.log" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for _ in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 40000 ))
    port_free "$port" || continue
    if as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        >/dev/null; then
        if as_pg "$BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres poisonguard; then
            log "server in $dir (stop: scripts/start-postgres.sh --stop $dir)"
            echo "postgresql+psycopg://postgres@127.0.0.1:$port/poisonguard"
            exit 0
        fi
        as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
done
log "could not start PostgreSQL; server log:"
cat "$dir/server.log" >&2 || true
exit 1
