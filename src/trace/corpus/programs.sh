# The programs of the trace corpus (sourced by record.sh and run.sh).
# prog_run NAME PREFIX...: runs program NAME with PREFIX prepended to its main
# process (e.g. `env LD_PRELOAD=... ZNSTRACE_OUT=...` or `znslab exec ... --`);
# helpers (redis-benchmark, redis-cli, the preprocessor) run plainly.
# Needs: CORPUS (this folder), WORK (a scratch folder).
REDIS_PORT=${REDIS_PORT:-6399}
REDIS_REQUESTS=${REDIS_REQUESTS:-30000}
CC1PLUS=${CC1PLUS:-$(g++ -print-prog-name=cc1plus)}
CC_SOURCE=${CC_SOURCE:-src/trace/replay_plan.cpp}
PROGRAMS=${PROGRAMS:-redis sqlite3 python3 cc1plus}

prog_prepare() {
  mkdir -p "$WORK"
  g++ -std=c++20 -I. -E "$CC_SOURCE" -o "$WORK/cc1plus.ii"
}

prog_run() {
  local name=$1; shift
  case $name in
    redis)
      "$@" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$WORK" --logfile "$WORK/redis.log" &
      local pid=$! i
      for i in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
      redis-benchmark -p "$REDIS_PORT" -q -n "$REDIS_REQUESTS" -r 100000 -c 10 \
        -t set,get,lpush,lpop,incr > "$WORK/redis-benchmark.out" 2>&1
      redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
      wait $pid ;;
    sqlite3) "$@" sqlite3 :memory: < "$CORPUS/workload.sql" > "$WORK/sqlite3.out" ;;
    python3) PYTHONMALLOC=malloc "$@" /usr/bin/python3 "$CORPUS/workload.py" > "$WORK/python3.out" ;;
    cc1plus) "$@" "$CC1PLUS" -fpreprocessed -quiet -O2 -std=c++20 "$WORK/cc1plus.ii" -o /dev/null ;;
    *) echo "unknown program $name" >&2; return 2 ;;
  esac
}
