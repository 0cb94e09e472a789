#!/usr/bin/env bash
# Captures of every line shape the converter reads, for benchmarks/bench_convert.py.
#
#     sudo bash benchmarks/make_captures.sh OUTDIR      # from the repository root; about 1 minute
#
# Each workload is the C build of sample_traces/linux-workloads.sh (in a 48 MiB memory
# cgroup) unless said otherwise; about 1.2-2.4 M lines (150-330 MiB) per capture. They stay
# out of git (OUTDIR defaults to /tmp/cmmsim-captures). Needs root, perf and trace-cmd.
set -euo pipefail
out=${1:-/tmp/cmmsim-captures}; mkdir -p "$out"
wl=sample_traces/linux-workloads.sh
EV="kmem:mm_page_alloc kmem:mm_page_free kmem:mm_page_free_batched filemap:mm_filemap_add_to_page_cache
filemap:mm_filemap_delete_from_page_cache filemap:mm_filemap_get_pages filemap:mm_filemap_map_pages
filemap:mm_filemap_fault writeback:writeback_dirty_folio writeback:writeback_single_inode
pagemap:mm_lru_activate ext4:ext4_writepages_result"
perf_e() { for e in $EV "$@"; do printf -- '-e %s ' "$e"; done; }
export CMMSIM_MEM_LIMIT_MB=48

# perf's default shape (comm tid [cpu] time: sys:event: fields) and a -F selection
perf record -q -a -m 4096 $(perf_e) -o "$out/cbuild.data" -- bash $wl cbuild
perf script -i "$out/cbuild.data" > "$out/perf-default.txt"
perf script -i "$out/cbuild.data" -F comm,tid,cpu,time,event,trace > "$out/perf-fields-cpu.txt"
# the build with user page faults (a quarter of the lines, ignored by the converter):
# the compact -F selection with runs of spaces collapsed
perf record -q -a -m 4096 $(perf_e exceptions:page_fault_user) -o "$out/cbuild-pf.data" -- bash $wl cbuild
perf script -i "$out/cbuild-pf.data" -F comm,pid,time,event,trace | tr -s ' ' > "$out/perf-compact-faults.txt"
# exec-heavy: fault-around ranges (mm_filemap_map_pages) dominate
perf record -q -a -m 4096 $(perf_e) -o "$out/exec.data" -- \
  bash -c 'for i in $(seq 3000); do /bin/true; done; for i in $(seq 40); do python3 -c pass; done'
perf script -i "$out/exec.data" > "$out/perf-map-pages.txt"
# read-heavy: whole-file reads of a cached 64 MiB file (long mm_filemap_get_pages ranges), 4 KiB reads
head -c $((64 << 20)) /dev/urandom > "$out/read.bin"; cat "$out/read.bin" > /dev/null
perf record -q -a -m 4096 $(perf_e) -o "$out/read.data" -- python3 -c '
import os, sys
for _ in range(30):
    with open(sys.argv[1], "rb") as f: f.read()
fd = os.open(sys.argv[1], os.O_RDONLY)
for _ in range(3):
    os.lseek(fd, 0, 0)
    while os.read(fd, 4096): pass
' "$out/read.bin"
perf script -i "$out/read.data" > "$out/perf-get-pages.txt"
rm "$out/read.bin"
# events the converter ignores dominate: user page faults, LRU insertions, context switches
perf record -q -a -m 8192 $(perf_e exceptions:page_fault_user pagemap:mm_lru_insertion sched:sched_switch) \
  -o "$out/ignored.data" -- bash $wl cbuild
perf script -i "$out/ignored.data" > "$out/perf-ignored.txt"
# raw ftrace: trace_pipe of a tracing instance of our own
inst=/sys/kernel/tracing/instances/cmmsim-capture
mkdir -p $inst; echo 65536 > $inst/buffer_size_kb
for e in $EV; do echo 1 > "$inst/events/${e%%:*}/${e##*:}/enable"; done
cat $inst/trace_pipe > "$out/ftrace.txt" & reader=$!
bash $wl cbuild; sleep 1; kill $reader; wait $reader || true
rmdir $inst
# trace-cmd report: the events enabled in tracefs by hand and the buffer read with
# `trace-cmd extract` (`trace-cmd record` needs to write /proc/sys/kernel/ftrace_enabled,
# which is not permitted on this VM)
T=/sys/kernel/tracing
old=$(cat $T/buffer_size_kb)
echo 0 > $T/tracing_on; echo > $T/trace; echo 131072 > $T/buffer_size_kb
for e in $EV; do echo 1 > "$T/events/${e%%:*}/${e##*:}/enable"; done
echo 1 > $T/tracing_on
bash $wl cbuild
echo 0 > $T/tracing_on
for e in $EV; do echo 0 > "$T/events/${e%%:*}/${e##*:}/enable"; done
trace-cmd extract -o "$out/cbuild.dat" > /dev/null
trace-cmd report -i "$out/cbuild.dat" > "$out/trace-cmd.txt"
echo > $T/trace; echo "${old%% *}" > $T/buffer_size_kb; echo 1 > $T/tracing_on
wc -l "$out"/*.txt
