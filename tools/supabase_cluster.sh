#!/usr/bin/env bash
# Build (or rebuild) a Supabase-shaped PostgreSQL 15 cluster for tests, as root:
#   tools/supabase_cluster.sh [PORT]      # default 5433
# The superuser is supabase_admin; `postgres` is a non-superuser owner (CREATEDB CREATEROLE
# BYPASSRLS REPLICATION); database `supabase_template` holds the shape (tools/supabase_shape.sql)
# and is a template postgres may copy. Tests then use
#   HUB_SUPABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres
# Trust authentication on 127.0.0.1: a throwaway test cluster, never a real one.
set -euo pipefail
port=${1:-5433}
version=15
name=supa
here=$(cd "$(dirname "$0")" && pwd)

create_cluster() {
    if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version $name"; then
        pg_createcluster "$version" "$name" --port "$port" -- --username=supabase_admin \
            --auth-local=trust --auth-host=trust >/dev/null
    fi
    local conf=/etc/postgresql/$version/$name
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
        > "$conf/pg_hba.conf"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" restart
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$port" && return; sleep 1; done
    echo "the $name cluster did not start on port $port" >&2
    return 1
}

build_template() {
    local admin=(psql -X -q -h 127.0.0.1 -p "$port" -U supabase_admin)
    "${admin[@]}" -d postgres -c "ALTER DATABASE supabase_template IS_TEMPLATE false" 2>/dev/null || true
    "${admin[@]}" -d postgres -c "DROP DATABASE IF EXISTS supabase_template WITH (FORCE)"
    "${admin[@]}" -d postgres -c "CREATE DATABASE supabase_template"
    "${admin[@]}" -d supabase_template -f "$here/supabase_shape.sql"
    "${admin[@]}" -d postgres -c "ALTER DATABASE supabase_template IS_TEMPLATE true"
    # The database tests connect to first, owned by the owner role as on Supabase.
    "${admin[@]}" -d postgres -c "ALTER DATABASE postgres OWNER TO postgres"
}

create_cluster
build_template
echo "HUB_SUPABASE_URL=postgresql://postgres@127.0.0.1:$port/postgres"
