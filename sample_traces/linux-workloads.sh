#!/usr/bin/env bash
# The workloads behind the real sample traces (run by `cmmsim trace record -- bash workloads.sh NAME`).
# Each is bounded in time and size, stays on this machine (HTTP on 127.0.0.1 only) and
# runs inside a memory cgroup so that its page cache has to cycle.
set -euo pipefail
name=$1
# Another draw of the same workload (specweb's request streams, churn's array
# sequence) for a same-kind hold-out; 0, the default, is the draw the docs' captures used.
wseed=${CMMSIM_WORKLOAD_SEED:-0}
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
  cbuild-ext)
    # A make -j2 of real C sources installed on this machine, unlike cbuild's generated
    # ones: 9 of zlib's example programs (linked with -lz) and five Cython-generated
    # fontTools modules (0.6-1.0 MB each, against Python.h; cc1 peaks at 90-130 MiB on
    # each, so run it with CMMSIM_MEM_LIMIT_MB=320 or more) at -O1 into objects. Needs
    # zlib1g-dev, and fontTools in CMMSIM_PYTHON (default: python3 on PATH).
    py=${CMMSIM_PYTHON:-python3}
    ft=$("$py" -c 'import fontTools, os; print(os.path.dirname(fontTools.__file__))')
    inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    src=$work/cbuild-ext; rm -rf "$src"; mkdir -p "$src"
    for b in enough example fitblk gun gzappend gzjoin gznorm minigzip zpipe; do
      cp "/usr/share/doc/zlib1g-dev/examples/$b.c" "$src/z_$b.c"
    done
    for m in cu2qu/cu2qu qu2cu/qu2cu pens/momentsPen feaLib/lexer varLib/iup; do
      cp "$ft/$m.c" "$src/"
    done
    printf 'CFLAGS=-O1 -w -I%s\nZ=$(patsubst %%.c,%%,$(wildcard z_*.c))\nO=$(patsubst %%.c,%%.o,$(filter-out z_%%,$(wildcard *.c)))\nall: $(Z) $(O)\nz_%%: z_%%.c\n\t$(CC) $(CFLAGS) -o $@ $< -lz\n%%.o: %%.c\n\t$(CC) $(CFLAGS) -c $< -o $@\n' "$inc" > "$src/Makefile"
    make -s -C "$src" -j2
    ;;
  specweb)
    # A SPECweb99-like file set (24 directories of 36 files in four size classes,
    # 0.1-900 KiB, about 117 MiB) served by Python's threaded http.server on 127.0.0.1
    # to two concurrent clients (4000 requests in all): directory and file popularity
    # Zipf (exponent 1), classes 35/50/14/1 %, after dropping the page cache.
    # Unlike webserve: many small files, a class mix, two connections at a time.
    www=$work/specweb; rm -rf "$www"; mkdir -p "$www"
    python3 - "$www" <<'PY'
import os, random, sys
random.seed(5)
for d in range(24):
    os.makedirs(os.path.join(sys.argv[1], f"d{d}"))
    for c in range(4):
        for k in range(1, 10):
            with open(os.path.join(sys.argv[1], f"d{d}", f"c{c}_{k}"), "wb") as f:
                f.write(random.randbytes(int(k * 10**c * 102.4)))
PY
    sync; echo 1 > /proc/sys/vm/drop_caches
    python3 -c 'import http.server as h, functools as f, sys; h.ThreadingHTTPServer(("127.0.0.1", 18081), f.partial(h.SimpleHTTPRequestHandler, directory=sys.argv[1])).serve_forever()' "$www" >/dev/null 2>&1 &
    server=$!
    trap 'kill $server' EXIT
    sleep 0.5
    python3 - "$wseed" <<'PY'
import random, sys, threading, urllib.request
def client(seed, n):
    rng = random.Random(seed)
    dirs = [1 / (r + 1) for r in range(24)]
    files = [1 / (r + 1) for r in range(9)]
    for _ in range(n):
        d = rng.choices(range(24), dirs)[0]
        c = rng.choices(range(4), [0.35, 0.50, 0.14, 0.01])[0]
        k = rng.choices(range(1, 10), files)[0]
        urllib.request.urlopen(f"http://127.0.0.1:18081/d{d}/c{c}_{k}", timeout=5).read()
clients = [threading.Thread(target=client, args=(6 + i + 2 * int(sys.argv[1]), 2000)) for i in range(2)]
for t in clients:
    t.start()
for t in clients:
    t.join()
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
  churn)
    # Allocation churn (numpy, docs/sampling.md): 3 arrays of 16-48 MiB live at a time
    # (at most 144 MiB), one of them passed over every 0.15 s (a read pass or a
    # read-modify-write pass), one replaced with probability 0.15 per step: 120 steps,
    # about 20 s. Each array lives about 3 s and is passed over about 7 times. The
    # fixed mmap threshold makes every array its own mapping, so freeing it returns its
    # pages to the kernel (glibc would otherwise raise the threshold after the first
    # free and keep later arrays on its heap). Needs numpy in CMMSIM_PYTHON (default:
    # python3 on PATH).
    MALLOC_MMAP_THRESHOLD_=1048576 "${CMMSIM_PYTHON:-python3}" - "$wseed" <<'PY'
import sys, time
import numpy as np
rng = np.random.default_rng(4 + int(sys.argv[1]))
live, total = [], 0.0
for step in range(120):
    if len(live) < 3 or rng.random() < 0.15:
        if len(live) == 3:
            live.pop(int(rng.integers(3)))  # freed: its mapping is unmapped
        mib = int(rng.choice([16, 24, 32, 48]))
        a = np.empty(mib << 17)  # float64: MiB * 2**20 / 8 elements
        a.fill(step)  # the allocation's write
        live.append(a)
    a = live[int(rng.integers(len(live)))]
    if rng.random() < 0.5:
        total += float(a.sum())  # a read pass
    else:
        a += 1.0  # a read-modify-write pass
    time.sleep(0.15)
print(f"churn done: {total:.0f}")
PY
    ;;
  *) echo "unknown workload $name" >&2; exit 2 ;;
esac
