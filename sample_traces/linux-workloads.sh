#!/usr/bin/env bash
# The workloads behind the real sample traces (run by `cmmsim trace record -- bash workloads.sh NAME`).
# Each is bounded in time and size, stays on this machine (HTTP on 127.0.0.1 only) and
# runs inside a memory cgroup so that its page cache has to cycle.
set -euo pipefail
name=$1
work=${CMMSIM_WORK:-/tmp/cmmsim-real}
mkdir -p "$work"
if [ -n "${CMMSIM_MEM_LIMIT_MB:-}" ]; then
  # Cap this workload's memory (page cache included) with a memory cgroup.
  if [ -d /sys/fs/cgroup/memory ]; then
    cg=/sys/fs/cgroup/memory/cmmsim-$name; mkdir -p "$cg"
    echo $((CMMSIM_MEM_LIMIT_MB << 20)) > "$cg/memory.limit_in_bytes"
    echo $$ > "$cg/tasks"
  else
    cg=/sys/fs/cgroup/cmmsim-$name; mkdir -p "$cg"
    echo $((CMMSIM_MEM_LIMIT_MB << 20)) > "$cg/memory.max"
    echo $$ > "$cg/cgroup.procs"
  fi
fi
case "$name" in
  cbuild)
    # A parallel C build of 200 generated translation units sharing 20 headers.
    src=$work/cbuild; rm -rf "$src"; mkdir -p "$src"
    for h in $(seq 1 20); do
      printf '#pragma once\nstatic inline int h%d(int x){return x*%d+%d;}\n' "$h" "$h" "$h" > "$src/h$h.h"
    done
    for i in $(seq 1 200); do
      { for h in $(seq 1 20); do echo "#include \"h$h.h\""; done
        echo "#include <stdio.h>"; echo "#include <string.h>"
        echo "int f$i(int n){int s=0; for(int k=0;k<n;k++) s+=h$(( i % 20 + 1 ))(k)^$i; return s;}"
      } > "$src/u$i.c"
    done
    echo 'int main(void){return 0;}' > "$src/main.c"
    printf 'OBJS=$(patsubst %%.c,%%.o,$(wildcard *.c))\nall: prog\nprog: $(OBJS)\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O2 -c $< -o $@\n' > "$src/Makefile"
    make -s -C "$src" -j2
    ;;
  webserve)
    # 300 files of 16-512 KiB (about 80 MiB) served on 127.0.0.1 to a bounded loop of
    # 1500 requests with Zipf-like popularity.
    www=$work/www; rm -rf "$www"; mkdir -p "$www"
    python3 - "$www" <<'PY'
import os, random, sys
random.seed(1)
for i in range(300):
    size = random.choice([16, 32, 64, 128, 256, 512]) * 1024
    with open(os.path.join(sys.argv[1], f"f{i}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY
    sync; echo 1 > /proc/sys/vm/drop_caches
    python3 -m http.server 18080 --bind 127.0.0.1 --directory "$www" >/dev/null 2>&1 &
    server=$!
    trap 'kill $server' EXIT
    sleep 0.5
    python3 - <<'PY'
import random, urllib.request
random.seed(2)
weights = [1 / (r + 1) for r in range(300)]
for _ in range(1500):
    i = random.choices(range(300), weights)[0]
    urllib.request.urlopen(f"http://127.0.0.1:18080/f{i}.bin", timeout=5).read()
PY
    ;;
  sqlite)
    # An SQLite database of 200 000 rows written in transactions, indexed and queried.
    python3 - "$work/db.sqlite" <<'PY'
import os, random, sqlite3, sys
random.seed(3)
if os.path.exists(sys.argv[1]):
    os.remove(sys.argv[1])
db = sqlite3.connect(sys.argv[1])
db.execute("create table t (id integer primary key, k integer, v text)")
for batch in range(200):
    db.executemany("insert into t (k, v) values (?, ?)",
                   [(random.randrange(10**6), os.urandom(96).hex()) for _ in range(1000)])
    db.commit()
db.execute("create index tk on t (k)")
for _ in range(3000):
    db.execute("select count(*) from t where k between ? and ?", (x := random.randrange(10**6), x + 500)).fetchone()
db.close()
PY
    sync
    ;;
  *) echo "unknown workload $name" >&2; exit 2 ;;
esac
