#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1:PORT with its files in DIR and loads the reference
# data (DATA/online_retail.csv.gz) into the table `retail`. TCP connections need the password
# PASSWORD (scram); the socket in DIR is trusted, for loading. TLS is on, with a throwaway CA
# (DIR/ca.crt) that signed the server's certificate for 127.0.0.1; plain connections work too.
# Usage: postgres.sh DIR PORT PASSWORD DATA
# Stop with: runuser -u postgres -- $PG_BIN/pg_ctl -D DIR/data stop -m fast
set -euo pipefail
DIR="$1"; PORT="$2"; PASSWORD="$3"; DATA="$4"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$PG_BIN" ]; then
    SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
AS_PG=(runuser -u postgres --)
if [ "$(id -u)" -ne 0 ]; then AS_PG=(); fi
mkdir -p "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rfm-agent test CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$DIR/data/server.key" \
    -out "$DIR/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$DIR/server.ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 2 -extfile "$DIR/server.ext" -out "$DIR/data/server.crt" 2>/dev/null
chmod 600 "$DIR/data/server.key"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR/data/server.key" "$DIR/data/server.crt"; fi
chmod 644 "$DIR/ca.crt"
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on" start >/dev/null
PSQL=("${AS_PG[@]}" "$PG_BIN/psql" -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" -c "ALTER USER postgres PASSWORD '$PASSWORD'"
"${PSQL[@]}" -c "CREATE TABLE retail (InvoiceNo text, StockCode text, Description text, Quantity integer,
    InvoiceDate timestamp, UnitPrice numeric(12, 3), CustomerID double precision, Country text)"
if [ -f "$DATA/online_retail.csv.gz" ]; then
    zcat "$DATA/online_retail.csv.gz" | "${PSQL[@]}" -c "COPY retail FROM STDIN (FORMAT csv, HEADER true)"
fi
echo "$PG_BIN"
