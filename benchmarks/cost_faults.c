/* The cost measurements behind docs/costs.md (host_fault_ns, zero_fill_ns).
 *
 *   gcc -O2 -o /tmp/cost_faults benchmarks/cost_faults.c && /tmp/cost_faults
 *
 * Per 4 KiB page, over 65,536 pages, five rounds:
 *   first-touch: a write to fresh anonymous memory (fault + zero fill),
 *   clear:       memset of an already mapped page (the zero fill alone),
 *   minor:       a write fault on a shared-memory page that exists but is
 *                unmapped (MADV_DONTNEED): the fault path, no zeroing, no I/O.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void) {
    const size_t pages = 1 << 16, ps = 4096, len = pages * ps;
    int fd = memfd_create("cost_faults", 0);
    if (fd < 0 || ftruncate(fd, len)) return 1;
    char *shared = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (size_t i = 0; i < pages; i++) shared[i * ps] = 1;
    for (int round = 0; round < 5; round++) {
        char *a = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        madvise(a, len, MADV_NOHUGEPAGE);
        double t0 = now_ns();
        for (size_t i = 0; i < pages; i++) a[i * ps] = 1;
        double t1 = now_ns();
        for (size_t i = 0; i < pages; i++) memset(a + i * ps, 0, ps);
        double t2 = now_ns();
        munmap(a, len);
        madvise(shared, len, MADV_DONTNEED);
        double t3 = now_ns();
        for (size_t i = 0; i < pages; i++) shared[i * ps] = 2;
        double t4 = now_ns();
        printf("first-touch %.0f ns  clear %.0f ns  minor %.0f ns\n",
               (t1 - t0) / pages, (t2 - t1) / pages, (t4 - t3) / pages);
    }
    return 0;
}
