#!/usr/bin/env bash
# Build (or rebuild) a Citus cluster for tests on this machine, as root: a coordinator on PORT and
# two workers on PORT+1 and PORT+2, three Debian PostgreSQL 15 clusters named citus<PORT>,
# citus<PORT+1>, citus<PORT+2>:
#   tools/citus_cluster.sh [PORT]      # default 5440
# Citus must be installed into PostgreSQL 15 first (built from source where no package exists;
# .ci/run builds it). Each database that hub uses needs the extension on every node and the
# workers registered on its coordinator: tools/throwaway.py's CitusDatabases does that for the
# tests. The cluster's own `postgres` database is set up the same way, so
#   HUB_CITUS_URL=postgresql://postgres@127.0.0.1:PORT/postgres
# works at once. Trust authentication on 127.0.0.1, as Citus' own connections between nodes use
# it: a throwaway test cluster, never a real one.
set -euo pipefail
port=${1:-5440}
version=15
ports=("$port" "$((port + 1))" "$((port + 2))")

if [ ! -f "/usr/share/postgresql/$version/extension/citus.control" ]; then
    echo "Citus is not installed into PostgreSQL $version (build it: ../shared/citus/build-citus.sh)" >&2
    exit 1
fi

start_node() {
    local p=$1 name=citus$1 conf=/etc/postgresql/$version/citus$1
    if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version $name"; then
        pg_createcluster "$version" "$name" --port "$p" -- --auth-local=trust --auth-host=trust >/dev/null
    fi
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
        > "$conf/pg_hba.conf"
    cat > "$conf/conf.d/citus.conf" <<EOF
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
# Small nodes: three clusters share the machine with the other test servers.
shared_buffers = 64MB
max_connections = 200
max_prepared_transactions = 200
# Citus' connections between the nodes: no TLS between clusters of one machine.
citus.node_conninfo = 'sslmode=disable'
# 4 shards per distributed table, not Citus' 32: two workers of a shared 2-core test machine gain
# nothing from more, and every query that is not routed to one shard and each TRUNCATE pay per
# shard (benchmarks/bench_citus.py measures with 32: --shards).
citus.shard_count = 4
EOF
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" restart
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$p" && return; sleep 1; done
    echo "the $name cluster did not start on port $p" >&2
    return 1
}

for p in "${ports[@]}"; do start_node "$p"; done

for p in "${ports[@]}"; do
    psql -X -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c 'CREATE EXTENSION IF NOT EXISTS citus'
done
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<EOF
SELECT citus_set_coordinator_host('127.0.0.1', $port);
SELECT citus_add_node('127.0.0.1', $((port + 1))) WHERE NOT EXISTS (
    SELECT FROM pg_dist_node WHERE nodeport = $((port + 1)));
SELECT citus_add_node('127.0.0.1', $((port + 2))) WHERE NOT EXISTS (
    SELECT FROM pg_dist_node WHERE nodeport = $((port + 2)));
EOF
echo "HUB_CITUS_URL=postgresql://postgres@127.0.0.1:$port/postgres"
