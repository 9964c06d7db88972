# Sourced by scripts that need a throwaway PostgreSQL 15: pg_cluster_start DIR creates a cluster in
# DIR listening only on a unix socket there, exports PGHOST/PGPORT/PGDATABASE, and stops it on exit.
PG_BIN=$(pg_config --bindir)

# initdb and pg_ctl refuse root: run them as the postgres system user then.
PG_RUNAS=()
[ "$(id -u)" = 0 ] && PG_RUNAS=(runuser -u postgres --)

pg_cluster_stop() {
    if [ -n "${PG_CLUSTER_DIR:-}" ] && [ -f "$PG_CLUSTER_DIR/data/postmaster.pid" ]; then
        "${PG_RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

pg_cluster_start() {
    PG_CLUSTER_DIR=$1
    mkdir -p "$PG_CLUSTER_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$PG_CLUSTER_DIR"
        chmod 755 "$PG_CLUSTER_DIR"
    fi
    "${PG_RUNAS[@]}" "$PG_BIN/initdb" -D "$PG_CLUSTER_DIR/data" -U postgres -A trust --no-sync >"$PG_CLUSTER_DIR/initdb.log" 2>&1 ||
        { cat "$PG_CLUSTER_DIR/initdb.log"; return 1; }
    cat >>"$PG_CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PG_CLUSTER_DIR'
port = 5432
fsync = ${PG_FSYNC:-off}
max_connections = 100
shared_preload_libraries = 'pgfeed, pg_stat_statements'
log_min_messages = warning
CONF
    trap pg_cluster_stop EXIT
    "${PG_RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -l "$PG_CLUSTER_DIR/server.log" -w -t 60 start >/dev/null ||
        { cat "$PG_CLUSTER_DIR/server.log"; return 1; }
    export PGHOST=$PG_CLUSTER_DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}
