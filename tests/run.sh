#!/usr/bin/env bash
# The test command (README.md, "Test it"): everything from a fresh machine.
# Sets up what the tests need, builds every crate and plugin library, checks format
# and lints, and runs all tests with CEILO_REQUIRE_SERVICES=1 so that a test whose
# service is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

export CEILO_REQUIRE_SERVICES=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

step "services: RabbitMQ"
if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
# Loopback only (AMQP, epmd and Erlang distribution): the tests need nothing else.
# Set before any RabbitMQ command, since the first one may start epmd.
export ERL_EPMD_ADDRESS=127.0.0.1
# A TLS listener on 5671 for the amqps:// tests, with a CA and a server certificate
# made here (where the broker, which runs as user rabbitmq, can read them).
tls=/etc/rabbitmq/ceilo-tls
if [ ! -s "$tls/server.pem" ]; then
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ceilo test CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$tls/ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
    chmod 755 "$tls" && chmod 644 "$tls"/*
fi
conf=/etc/rabbitmq/rabbitmq.conf
if [ ! -f "$conf" ] || grep -q '^# ceilo tests' "$conf"; then
    cat >"$conf" <<CONF
# ceilo tests: plain AMQP and AMQP over TLS, loopback only
listeners.tcp.default = 127.0.0.1:5672
listeners.ssl.default = 127.0.0.1:5671
ssl_options.cacertfile = $tls/ca.pem
ssl_options.certfile = $tls/server.pem
ssl_options.keyfile = $tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
fi
export CEILO_TEST_AMQPS_URL="amqps://guest:guest@127.0.0.1:5671/%2f"
export CEILO_TEST_AMQPS_CA="$tls/ca.pem"
# A broker started before the TLS listener was configured: restart it.
if rabbitmq-diagnostics -q ping >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/5671) 2>/dev/null; then
    rabbitmqctl stop >/dev/null 2>&1 || true
    sleep 2
fi
if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        rabbitmq-server -detached
fi
for _ in $(seq 1 90); do
    rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break
    sleep 2
done
rabbitmqctl await_startup
rabbitmq-diagnostics -q ping
for _ in $(seq 1 30); do
    (exec 3<>/dev/tcp/127.0.0.1/5671) 2>/dev/null && break
    sleep 1
done
(exec 3<>/dev/tcp/127.0.0.1/5671) 2>/dev/null || { echo "RabbitMQ has no TLS listener on 5671"; exit 1; }

step "services: SecantusDB (MongoDB wire protocol)"
# In a virtual environment of its own, reused between runs on one machine.
venv="${CEILO_TEST_VENV:-$HOME/.cache/ceilo-tests/venv}"
if [ ! -x "$venv/bin/secantusd-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check SecantusDB
fi
export CEILO_SECANTUSD="$venv/bin/secantusd-py"
export CEILO_TEST_MONGODB_URL="${CEILO_TEST_MONGODB_URL:-mongodb://127.0.0.1:27017}"
if ! (exec 3<>/dev/tcp/127.0.0.1/27017) 2>/dev/null; then
    mongo_data="${CEILO_TEST_MONGODB_DATA:-$HOME/.cache/ceilo-tests/secantus-data}"
    mkdir -p "$mongo_data"
    nohup "$CEILO_SECANTUSD" --host 127.0.0.1 --port 27017 --storage-path "$mongo_data" \
        >"$HOME/.cache/ceilo-tests/secantusd.log" 2>&1 &
fi
for _ in $(seq 1 60); do
    (exec 3<>/dev/tcp/127.0.0.1/27017) 2>/dev/null && break
    sleep 1
done
(exec 3<>/dev/tcp/127.0.0.1/27017) 2>/dev/null || { echo "SecantusDB did not start"; cat "$HOME/.cache/ceilo-tests/secantusd.log"; exit 1; }

step "Ceilometer's API suite, client and code: gabbi, python-ceilometerclient 2.9.0, the ceilometer 8.1.5 and panko 10.0.0 sdists and ceilometer 27.0.0 from PyPI"
# Taken from the registry at test time, never committed; a virtual environment of its
# own (gabbi's dependencies stay apart from SecantusDB's).
suite="${CEILO_TEST_SUITES:-$HOME/.cache/ceilo-tests/suites}"
if [ ! -x "$suite/venv/bin/gabbi-run" ] || [ ! -x "$suite/venv/bin/ceilometer" ]; then
    python3 -m venv "$suite/venv"
    "$suite/venv/bin/pip" install --quiet --disable-pip-version-check 'gabbi==4.2.3' \
        'python-ceilometerclient==2.9.0'
fi
if [ ! -d "$suite/ceilometer-8.1.5/ceilometer/tests/functional/gabbi/gabbits" ]; then
    "$suite/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: 'ceilometer==8.1.5' -d "$suite/sdist"
    tar -xzf "$suite/sdist/ceilometer-8.1.5.tar.gz" -C "$suite"
fi
# Panko's events API suite (the events API moved there after Ceilometer 6.0.0).
if [ ! -d "$suite/panko-10.0.0/panko/tests/functional/gabbi/gabbits" ]; then
    "$suite/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: 'panko==10.0.0' -d "$suite/sdist"
    tar -xzf "$suite/sdist/panko-10.0.0.tar.gz" -C "$suite"
fi
# Ceilometer itself (its notifier publisher and signature code, with oslo.messaging)
# for the mixed-fleet tests, in a virtual environment of its own.
if [ ! -x "$suite/ceilometer-venv/bin/python" ] || ! "$suite/ceilometer-venv/bin/python" -c 'import ceilometer.publisher.messaging' 2>/dev/null; then
    python3 -m venv "$suite/ceilometer-venv"
    "$suite/ceilometer-venv/bin/pip" install --quiet --disable-pip-version-check 'ceilometer==27.0.0'
fi
export CEILO_CEILOMETER_PYTHON="$suite/ceilometer-venv/bin/python"
# OpenTelemetry's own protobuf messages (PyPI opentelemetry-proto), to decode what the
# opentelemetryhttp:// publisher sends.
if [ ! -x "$suite/otel-venv/bin/python" ] || ! "$suite/otel-venv/bin/python" -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' 2>/dev/null; then
    python3 -m venv "$suite/otel-venv"
    "$suite/otel-venv/bin/pip" install --quiet --disable-pip-version-check 'opentelemetry-proto==1.29.0'
fi
export CEILO_OTLP_PYTHON="$suite/otel-venv/bin/python"
export CEILO_GABBI_RUN="$suite/venv/bin/gabbi-run"
export CEILO_CEILOMETER_CLIENT="$suite/venv/bin/ceilometer"
export CEILO_CEILOMETER_GABBI="$suite/ceilometer-8.1.5/ceilometer/tests/functional/gabbi"
export CEILO_PANKO_GABBI="$suite/panko-10.0.0/panko/tests/functional/gabbi"

step "Prometheus and its Pushgateway (Debian), for the prometheus:// publisher and the scrape endpoint"
if ! command -v prometheus >/dev/null 2>&1 || ! command -v prometheus-pushgateway >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-pushgateway >/dev/null
fi
# The packages start their own daemons where an init system runs; the tests start
# their own on free ports.
prometheus --version 2>&1 | head -1
prometheus-pushgateway --version 2>&1 | head -1

step "Gnocchi 4.7.1 from PyPI, its index in Debian's PostgreSQL (the gnocchi:// publisher)"
# Gnocchi's indexer needs MySQL or PostgreSQL (it has no SQLite driver).
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$pg_version main"; then
    pg_createcluster "$pg_version" main >/dev/null
fi
if ! pg_lsclusters -h | grep -q "^$pg_version main .* online"; then
    pg_ctlcluster "$pg_version" main start
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 && break
    sleep 1
done
pg_isready -h 127.0.0.1
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'ceilo_gnocchi'\"" | grep -q 1; then
    su postgres -c "psql -qc \"CREATE ROLE ceilo_gnocchi LOGIN CREATEDB PASSWORD 'ceilo_gnocchi'\""
fi
export CEILO_TEST_POSTGRES_URL="postgresql://ceilo_gnocchi:ceilo_gnocchi@127.0.0.1:5432"
if [ ! -x "$suite/gnocchi-venv/bin/gnocchi-api" ] || [ ! -x "$suite/gnocchi-venv/bin/uwsgi" ]; then
    python3 -m venv "$suite/gnocchi-venv"
    "$suite/gnocchi-venv/bin/pip" install --quiet --disable-pip-version-check 'gnocchi==4.7.1' \
        'gnocchiclient==7.2.0' 'uwsgi==2.0.31' psycopg2-binary sqlalchemy sqlalchemy-utils alembic oslo.db
fi
export CEILO_GNOCCHI_VENV="$suite/gnocchi-venv"

step "browser: Debian chromium and playwright-core (dashboard test)"
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path examples/third-party-plugin/Cargo.toml -- --check

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build (host, plugins, test fixtures)"
cargo build --workspace --quiet

step "tests"
log=$(mktemp)
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over all test binaries (cargo prints one per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
