#!/usr/bin/env bash
# Starts a Spark Connect server on 127.0.0.1:PORT, in the background, with its logs and pids in DIR.
#   spark.sh local DIR PORT [TOKEN]    the server runs its executors in its own JVM (local[2])
#   spark.sh cluster DIR PORT [TOKEN]  a standalone master and worker on loopback, and the server
#                                      on them, so that the job runs on executors in other processes
# With TOKEN, clients must send it (sc://127.0.0.1:PORT/;token=TOKEN).
# The server comes from PyPI's pyspark (its jars include Spark Connect), installed once under
# $HOME/.cache/rfm-agent-spark; Java is Debian's OpenJDK 17. Prints nothing; stop with:
#   kill $(cat DIR/pids)
# Wait for it with spark.sh wait PORT SECONDS.
set -euo pipefail
MODE="$1"
if [ "$MODE" = wait ]; then
    PORT="$2"; SECS="$3"
    for _ in $(seq 1 "$SECS"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then exit 0; fi
        sleep 1
    done
    echo "Spark Connect did not listen on 127.0.0.1:$PORT within $SECS s" >&2
    exit 1
fi
DIR="$2"; PORT="$3"; TOKEN="${4:-}"
VERSION=4.3.0
CACHE="$HOME/.cache/rfm-agent-spark"
export SPARK_HOME="$CACHE/site/pyspark"
if [ ! -x "$SPARK_HOME/sbin/start-connect-server.sh" ] || [ ! -f "$CACHE/site/.version-$VERSION" ]; then
    rm -rf "$CACHE/site"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$CACHE/site" --root-user-action=ignore "pyspark==$VERSION"
    touch "$CACHE/site/.version-$VERSION"
fi
if ! command -v java >/dev/null 2>&1; then
    SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
export JAVA_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$DIR/logs" SPARK_PID_DIR="$DIR"
mkdir -p "$DIR/logs" "$DIR/work"
: > "$DIR/pids"

free_port() { python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }

MASTER='local[2]'
if [ "$MODE" = cluster ]; then
    MASTER_PORT="$(free_port)"
    "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master --host 127.0.0.1 \
        --port "$MASTER_PORT" --webui-port 0 > "$DIR/logs/master.log" 2>&1 &
    echo $! >> "$DIR/pids"
    "$0" wait "$MASTER_PORT" 60
    "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 \
        --cores 2 --memory 2g --webui-port 0 --work-dir "$DIR/work" \
        "spark://127.0.0.1:$MASTER_PORT" > "$DIR/logs/worker.log" 2>&1 &
    echo $! >> "$DIR/pids"
    MASTER="spark://127.0.0.1:$MASTER_PORT"
fi
if [ -n "$TOKEN" ]; then export SPARK_CONNECT_AUTHENTICATE_TOKEN="$TOKEN"; fi
# spark-submit execs java, so $! is the server's own pid (start-connect-server.sh would
# leave it behind a wrapper).
(cd "$DIR" && exec "$SPARK_HOME/bin/spark-submit" --class org.apache.spark.sql.connect.service.SparkConnectServer \
    --name "Spark Connect server" --master "$MASTER" \
    --driver-memory 2g --executor-memory 1g \
    --conf spark.connect.grpc.binding.address=127.0.0.1 \
    --conf "spark.connect.grpc.binding.port=$PORT" \
    --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4 \
    --conf "spark.sql.warehouse.dir=$DIR/warehouse" \
    > "$DIR/logs/connect.log" 2>&1) &
echo $! >> "$DIR/pids"
