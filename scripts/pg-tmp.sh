# Throwaway Postgres for tests and local runs. Source this file, then:
#   pg_tmp_start   initdb in a temporary directory, start on a free port, export DATABASE_URL
#   pg_tmp_stop    stop it and remove the directory
# As root, the server runs as an unprivileged user (initdb refuses root).

pg_tmp_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
pg_tmp_as() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
pg_tmp_free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# pg_tmp_init DIR PORT: create and start a cluster in DIR listening on 127.0.0.1:PORT.
# Settings: PG_TMP_DURABLE=1 keeps fsync and full-page writes (a system people use; tests
# go without), PG_TMP_LISTEN the addresses to listen on (127.0.0.1), PG_TMP_HBA a
# pg_hba.conf line added when the cluster is made (for clients beyond this host),
# PG_TMP_PASSWORD the postgres user's password: then every connection must give it
# (scram-sha-256) instead of being trusted.
pg_tmp_init() {
  local dir=$1 port=$2 bin fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_TMP_DURABLE:-0}" = 1 ] && fast=""
  bin=$(pg_tmp_bindir)
  [ -n "$bin" ] || { echo "no PostgreSQL server binaries: apt-get install -y postgresql" >&2; return 1; }
  PG_USER=${PG_USER:-postgres}
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    chown "$PG_USER" "$dir"
  fi
  ( cd "$dir" &&
    { [ -f "$dir/data/PG_VERSION" ] || {
        local auth=(--auth=trust)
        if [ -n "${PG_TMP_PASSWORD:-}" ]; then
          printf '%s\n' "$PG_TMP_PASSWORD" >"$dir/pwfile" && chmod 600 "$dir/pwfile"
          [ "$(id -u)" != 0 ] || chown "$PG_USER" "$dir/pwfile"
          auth=(--auth=scram-sha-256 --pwfile="$dir/pwfile")
        fi
        pg_tmp_as "$bin/initdb" -D "$dir/data" -U postgres "${auth[@]}" -E UTF8 --no-locale >"$dir/initdb.log" &&
        rm -f "$dir/pwfile" &&
        if [ -n "${PG_TMP_HBA:-}" ]; then echo "$PG_TMP_HBA" >>"$dir/data/pg_hba.conf"; fi; }; } &&
    pg_tmp_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "-p $port -k $dir \
      -c listen_addresses=${PG_TMP_LISTEN:-127.0.0.1} $fast -c max_connections=300" start >/dev/null
  ) || { cat "$dir"/*.log >&2; return 1; }
}

pg_tmp_start() {
  PGTMP_DIR=$(mktemp -d /tmp/pgtmp.XXXXXX)
  PGPORT=$(pg_tmp_free_port)
  pg_tmp_init "$PGTMP_DIR" "$PGPORT" || return 1
  "$(pg_tmp_bindir)/createdb" -h "$PGTMP_DIR" -p "$PGPORT" -U postgres app
  export PGTMP_DIR PGPORT PG_USER PGHOST=$PGTMP_DIR DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/app"
}

pg_tmp_stop() {
  [ -n "${PGTMP_DIR:-}" ] || return 0
  ( cd / && pg_tmp_as "$(pg_tmp_bindir)/pg_ctl" -D "$PGTMP_DIR/data" -m fast -w stop >/dev/null ) || true
  rm -rf "$PGTMP_DIR"; unset PGTMP_DIR PGPORT PGHOST DATABASE_URL
}
