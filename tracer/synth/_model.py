"""The Linux guest model in numba: page allocator, page cache, reclaim, devices.

One :class:`~cmmsim.tracer.synth._state.Guest` (a namedtuple of arrays, laid
out and sized in :mod:`cmmsim.tracer.synth._state`, built by :func:`new_guest`)
holds everything about one guest; the ``njit`` functions below are the only way
workload code touches it, and each emits the page events the operation makes
on a hinting Linux guest (DESIGN.md section 2, "How Linux drives the states"):

=================================  =================================================================
operation                          events (per 4 KiB frame)
=================================  =================================================================
anonymous allocation               SET_STABLE, WRITE (the fault zero-fills it)
free (anonymous or file page)      SET_UNUSED
page-cache miss                    SET_STABLE, WRITE (read from disk), SET_VOLATILE, or
                                   SET_POT_VOLATILE for a writably mapped file
lookup of a clean cached page      SET_STABLE_IF_RESIDENT, READ, SET_VOLATILE (or SET_POT_VOLATILE)
lookup of a dirty cached page      READ
write to a clean cached page       SET_STABLE_IF_RESIDENT, WRITE, SET_STABLE (a writably mapped
                                   one: WRITE alone, that is what P is for)
write of a new file page           SET_STABLE, WRITE (mapped writable: SET_STABLE, WRITE,
                                   SET_POT_VOLATILE, WRITE)
writeback of a dirty page          READ (the disk reads it), SET_VOLATILE (or SET_POT_VOLATILE)
swap-out of an anonymous page      READ (the disk reads it), SET_UNUSED
swap-in                            SET_STABLE, WRITE (read from swap), then the access
=================================  =================================================================

Memory. The first ``reserved`` frames are the kernel's (image and the
``struct page`` array): the boot marks them stable once and they are never
freed. The rest is a buddy allocator (orders 0-10, free blocks merged with
their buddy on free, a block split from the top down on allocation; lists
are last-in first-out). Single frames pass through a per-CPU list (one for
the guest): a freed frame is reused first, the list is refilled from the
buddy lists ``pcp_batch`` frames at a time and drained from its cold end past
``pcp_high``, as Linux's ``free_unref_page`` and ``rmqueue_pcplist`` do.
When an allocation would take free memory below the low watermark the guest
reclaims until it is back above the high one (Linux's ``min_free_kbytes``
and ``watermark_scale_factor`` rules): clean page cache first, from the
inactive list's cold end (the active list is demoted to keep it no larger
than the inactive one; a second lookup of an inactive page activates it),
then dirty page cache (written back, oldest first, then freed), then
anonymous pages (second chance: a page touched since the last scan is
spared once), which go to swap. A higher-order allocation that finds no
free block that large falls back to single pages. Dirty pages are also
written back by the flusher: every ``wb_interval_ns`` those older than
``expire_ns``, and whenever more than ``bg_dirty_pages`` are dirty.

Kernel memory (kernel stacks, page tables, socket buffers: ``kmem_alloc``)
is stable and never reclaimed; a block allocated whole goes back whole.

Time. Every operation takes the task's clock ``t`` (ns) and returns it
advanced: copies and zero-fills run on the guest's CPUs (the one that fell
idle last by ``t``, so a task keeps its CPU; else the task waits for the
first to fall idle), cache misses, swap-ins and writeback queue on one disk,
sends and receives on one network link. Events are stamped at the
time they happen, raised to the last stamp when tasks interleave, so the
trace is in time order. Nothing here draws random numbers: the workload
decides, the model follows.

Every operation has a pure-Python twin, a method of
:class:`cmmsim.tracer.synth._guest.GuestSim` (its ``TWINS`` maps one to the other);
the tests hold them to the same events.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from cmmsim.tracer.schema import Op
from cmmsim.tracer.synth._state import (
    F_ACTIVE,
    F_MAPPED,
    F_REF,
    K_ANON,
    K_CLEAN,
    K_DIRTY,
    K_FREE,
    K_KERNEL,
    L_ACTIVE,
    L_ANON,
    L_DIRTY,
    L_FREE0,
    L_INACTIVE,
    L_PCP,
    MAX_ORDER,
    N_LISTS,
    N_SC,
    NO_PAGE,
    S_ACTIVE,
    S_ANON,
    S_DIRTY,
    S_DISK_FREE,
    S_FREE,
    S_HITS,
    S_INACTIVE,
    S_KERNEL,
    S_LAST_T,
    S_LIMIT,
    S_MAPPED_CLEAN,
    S_MAPPED_DIRTY,
    S_MISSES,
    S_NEXT_FLUSH,
    S_NIC_FREE,
    S_PCP,
    S_POS,
    S_RECLAIMED,
    S_SWAP_INS,
    S_SWAP_OUTS,
    S_SWAPPED,
    S_WRITTEN_BACK,
    SWAPPED,
    Config,
    Guest,
)

_READ, _WRITE = int(Op.READ), int(Op.WRITE)
_S, _U, _V, _P, _SIR = (
    int(Op.SET_STABLE),
    int(Op.SET_UNUSED),
    int(Op.SET_VOLATILE),
    int(Op.SET_POT_VOLATILE),
    int(Op.SET_STABLE_IF_RESIDENT),
)


def new_guest(cfg: Config, cpus: int, n_keys: int, capacity: int) -> Guest:
    """An empty guest: every frame past ``cfg.reserved`` free, every key absent."""
    n = cfg.pages
    nodes = n + N_LISTS
    prev = np.arange(nodes, dtype=np.int32)  # every list empty: sentinels point at themselves
    nxt = prev.copy()
    g = Guest(
        sc=np.zeros(N_SC, np.int64),
        cpu_free=np.zeros(cpus, np.int64),
        kind=np.zeros(n, np.uint8),
        flags=np.zeros(n, np.uint8),
        key=np.full(n, -1, np.int64),
        forder=np.full(n, -1, np.int8),
        dirtied=np.zeros(n, np.int64),
        prev=prev,
        next=nxt,
        where=np.full(n_keys, NO_PAGE, np.int32),
        out_t=np.zeros(capacity, np.int64),
        out_pfn=np.zeros(capacity, np.uint32),
        out_op=np.zeros(capacity, np.uint8),
        cfg=cfg,
    )
    blocks = np.array(free_blocks(cfg.reserved, n), dtype=np.int64).reshape(-1, 2)
    _init_free(g, blocks[:, 0].copy(), blocks[:, 1].copy())
    g.sc[S_NEXT_FLUSH] = cfg.wb_interval_ns
    g.sc[S_LIMIT] = capacity
    return g


def free_blocks(first: int, pages: int) -> list[tuple[int, int]]:
    """``first..pages-1`` cut into maximal aligned buddy blocks ``(pfn, order)``, lowest first."""
    out = []
    p = first
    while p < pages:
        k = MAX_ORDER
        while k > 0 and (p % (1 << k) or p + (1 << k) > pages):
            k -= 1
        out.append((p, k))
        p += 1 << k
    return out


@nb.njit(cache=True, nogil=True, _nrt=False)
def _init_free(g, pfns, orders):
    # Pushed highest first, so the lowest block heads its list: a fresh guest
    # hands out low frames first.
    for i in range(pfns.size - 1, -1, -1):
        g.forder[pfns[i]] = orders[i]
        _push(g, L_FREE0 + orders[i], pfns[i])
        g.sc[S_FREE] += 1 << orders[i]


# -- lists ------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _push(g, lst, p):
    s = g.cfg.pages + lst
    nx = g.next[s]
    g.next[s] = p
    g.prev[p] = s
    g.next[p] = nx
    g.prev[nx] = p


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _push_tail(g, lst, p):
    s = g.cfg.pages + lst
    pv = g.prev[s]
    g.prev[s] = p
    g.next[p] = s
    g.prev[p] = pv
    g.next[pv] = p


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _unlink(g, p):
    pv = g.prev[p]
    nx = g.next[p]
    g.next[pv] = nx
    g.prev[nx] = pv


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _tail(g, lst):
    """The list's oldest node, or -1 when it is empty."""
    s = g.cfg.pages + lst
    p = g.prev[s]
    return -1 if p == s else p


# -- events and time --------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, _nrt=False)
def emit(g, t, p, op):
    """Append one event at time ``t`` (raised to the last stamp)."""
    pos = g.sc[S_POS]
    if pos >= g.out_t.size:
        raise RuntimeError("guest model: event buffer overflow (a step exceeded its headroom)")
    if t < g.sc[S_LAST_T]:
        t = g.sc[S_LAST_T]
    g.out_t[pos] = t
    g.out_pfn[pos] = p
    g.out_op[pos] = op
    g.sc[S_POS] = pos + 1
    g.sc[S_LAST_T] = t


@nb.njit(cache=True, nogil=True, _nrt=False)
def more(g):
    """True while the chunk has room for another step."""
    return g.sc[S_POS] < g.sc[S_LIMIT]


@nb.njit(cache=True, nogil=True, _nrt=False)
def compute(g, t, ns):
    """Run ``ns`` of CPU work for a task ready at ``t``; returns when it ends.

    The task takes the CPU that fell idle last by ``t`` (the one it just ran on,
    if nobody took it), else waits for the first to fall idle.
    """
    c = -1
    for i in range(g.cpu_free.size):
        if g.cpu_free[i] <= t and (c < 0 or g.cpu_free[i] > g.cpu_free[c]):
            c = i
    if c < 0:
        c = 0
        for i in range(1, g.cpu_free.size):
            if g.cpu_free[i] < g.cpu_free[c]:
                c = i
    start = max(t, g.cpu_free[c])
    g.cpu_free[c] = start + ns
    return start + ns


@nb.njit(cache=True, nogil=True, _nrt=False)
def disk_io(g, t, ns):
    """Queue ``ns`` of disk work at ``t``; returns when it completes."""
    end = max(t, g.sc[S_DISK_FREE]) + ns
    g.sc[S_DISK_FREE] = end
    return end


@nb.njit(cache=True, nogil=True, _nrt=False)
def net_send(g, t, pages):
    """Queue ``pages`` for the network link; the task waits only while its send buffer is full."""
    done = max(t, g.sc[S_NIC_FREE]) + pages * g.cfg.net_ns
    g.sc[S_NIC_FREE] = done
    return max(t, done - g.cfg.sndbuf_ns)


@nb.njit(cache=True, nogil=True, _nrt=False)
def net_recv(g, t, pages):
    """Receive ``pages`` from the network link; returns when the last one has arrived."""
    done = max(t, g.sc[S_NIC_FREE]) + pages * g.cfg.net_ns
    g.sc[S_NIC_FREE] = done
    return done


# -- buddy allocator --------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, _nrt=False)
def _buddy_alloc(g, order):
    n = g.cfg.pages
    k = order
    while k <= MAX_ORDER and g.next[n + L_FREE0 + k] == n + L_FREE0 + k:
        k += 1
    if k > MAX_ORDER:
        return -1
    p = g.next[n + L_FREE0 + k]
    _unlink(g, p)
    g.forder[p] = -1
    while k > order:
        k -= 1
        half = p + (1 << k)
        g.forder[half] = k
        _push(g, L_FREE0 + k, half)
    g.sc[S_FREE] -= 1 << order
    return p


@nb.njit(cache=True, nogil=True, _nrt=False)
def _buddy_free(g, p, order):
    """Return the free block of ``2**order`` frames at ``p``, merged with its free buddies."""
    n = g.cfg.pages
    size = 1 << order
    while order < MAX_ORDER:
        b = p ^ (1 << order)
        if b + (1 << order) > n or g.forder[b] != order:
            break
        _unlink(g, b)
        g.forder[b] = -1
        p = min(p, b)
        order += 1
    g.forder[p] = order
    _push(g, L_FREE0 + order, p)
    g.sc[S_FREE] += size


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _alloc0(g):
    """One frame from the per-CPU list, refilled from the buddy lists when empty."""
    n = g.cfg.pages
    if g.sc[S_PCP] == 0:
        for _ in range(g.cfg.pcp_batch):
            p = _buddy_alloc(g, 0)
            if p < 0:
                break
            _push_tail(g, L_PCP, p)
            g.sc[S_PCP] += 1
            g.sc[S_FREE] += 1
        if g.sc[S_PCP] == 0:
            return -1
    p = g.next[n + L_PCP]
    _unlink(g, p)
    g.sc[S_PCP] -= 1
    g.sc[S_FREE] -= 1
    return p


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _free0(g, p):
    """A freed frame goes to the per-CPU list; past its high mark the oldest go to the buddy."""
    _push(g, L_PCP, p)
    g.sc[S_PCP] += 1
    g.sc[S_FREE] += 1
    if g.sc[S_PCP] > g.cfg.pcp_high:
        for _ in range(g.cfg.pcp_batch):
            q = _tail(g, L_PCP)
            _unlink(g, q)
            g.sc[S_PCP] -= 1
            g.sc[S_FREE] -= 1
            _buddy_free(g, q, 0)


# -- page bookkeeping -------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, _nrt=False)
def _unlist(g, p):
    """Take page ``p`` off its LRU list and out of its kind's count."""
    _unlink(g, p)
    k = g.kind[p]
    f = g.flags[p]
    if k == K_CLEAN:
        g.sc[S_ACTIVE if f & F_ACTIVE else S_INACTIVE] -= 1
        if f & F_MAPPED:
            g.sc[S_MAPPED_CLEAN] -= 1
    elif k == K_DIRTY:
        g.sc[S_DIRTY] -= 1
        if f & F_MAPPED:
            g.sc[S_MAPPED_DIRTY] -= 1
    else:
        g.sc[S_ANON] -= 1


@nb.njit(cache=True, nogil=True, _nrt=False)
def _add_clean(g, p):
    g.kind[p] = K_CLEAN
    g.flags[p] &= F_MAPPED
    _push(g, L_INACTIVE, p)
    g.sc[S_INACTIVE] += 1
    if g.flags[p] & F_MAPPED:
        g.sc[S_MAPPED_CLEAN] += 1


@nb.njit(cache=True, nogil=True, _nrt=False)
def _add_dirty(g, p, t):
    g.kind[p] = K_DIRTY
    g.flags[p] &= F_MAPPED
    g.dirtied[p] = t
    _push(g, L_DIRTY, p)
    g.sc[S_DIRTY] += 1
    if g.flags[p] & F_MAPPED:
        g.sc[S_MAPPED_DIRTY] += 1


@nb.njit(cache=True, nogil=True, _nrt=False)
def _add_anon(g, p):
    g.kind[p] = K_ANON
    g.flags[p] = 0
    _push(g, L_ANON, p)
    g.sc[S_ANON] += 1


@nb.njit(cache=True, nogil=True, _nrt=False)
def _bind(g, p, key, mapped):
    g.key[p] = key
    g.where[key] = p
    g.flags[p] = F_MAPPED if mapped else 0


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _release(g, p, t):
    """Free a listed page: SET_UNUSED, its key forgotten, the frame back to the buddy."""
    _unlist(g, p)
    emit(g, t, p, _U)
    g.where[g.key[p]] = NO_PAGE
    g.key[p] = -1
    g.kind[p] = K_FREE
    g.flags[p] = 0
    _free0(g, p)


@nb.njit(cache=True, nogil=True, _nrt=False)
def _clean_op(g, p):
    return _P if g.flags[p] & F_MAPPED else _V


@nb.njit(cache=True, nogil=True, _nrt=False)
def _writeback(g, p, t):
    _unlist(g, p)
    emit(g, t, p, _READ)
    emit(g, t, p, _clean_op(g, p))
    disk_io(g, t, g.cfg.disk_write_ns)
    _add_clean(g, p)
    g.sc[S_WRITTEN_BACK] += 1


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _flush(g, t):
    """The flusher: expired dirty pages every interval, and any above the background limit."""
    due = t >= g.sc[S_NEXT_FLUSH]
    if not due and g.sc[S_DIRTY] <= g.cfg.bg_dirty_pages:
        return
    cutoff = t - g.cfg.expire_ns
    budget = g.cfg.wb_batch
    while budget > 0:
        p = _tail(g, L_DIRTY)
        if p < 0:
            break
        if g.sc[S_DIRTY] <= g.cfg.bg_dirty_pages and (not due or g.dirtied[p] > cutoff):
            break
        _writeback(g, p, t)
        budget -= 1
    if due and budget > 0:
        g.sc[S_NEXT_FLUSH] = t + g.cfg.wb_interval_ns


@nb.njit(cache=True, nogil=True, _nrt=False)
def _reclaim(g, t, target):
    """Free pages until ``target`` are free: clean cache, then dirty cache, then anonymous."""
    while g.sc[S_FREE] < target:
        if g.sc[S_INACTIVE] + g.sc[S_ACTIVE] > 0:
            while g.sc[S_ACTIVE] > g.sc[S_INACTIVE]:
                q = _tail(g, L_ACTIVE)
                _unlist(g, q)
                g.flags[q] &= F_MAPPED
                _push(g, L_INACTIVE, q)
                g.sc[S_INACTIVE] += 1
                if g.flags[q] & F_MAPPED:
                    g.sc[S_MAPPED_CLEAN] += 1
            _release(g, _tail(g, L_INACTIVE), t)
            g.sc[S_RECLAIMED] += 1
        elif g.sc[S_DIRTY] > 0:
            p = _tail(g, L_DIRTY)
            _writeback(g, p, t)
            _release(g, p, t)
            g.sc[S_RECLAIMED] += 1
        elif g.sc[S_ANON] > 0:
            p = _tail(g, L_ANON)
            if g.flags[p] & F_REF:
                g.flags[p] = 0
                _unlink(g, p)
                _push(g, L_ANON, p)
                continue
            key = g.key[p]
            emit(g, t, p, _READ)
            disk_io(g, t, g.cfg.disk_write_ns)
            _release(g, p, t)
            g.where[key] = SWAPPED
            g.sc[S_SWAPPED] += 1
            g.sc[S_SWAP_OUTS] += 1
        else:
            break


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def _take(g, order, t):
    """A free block of ``2**order`` frames (reclaiming first if memory is low), or -1."""
    need = 1 << order
    if g.sc[S_FREE] - need < g.cfg.wmark_low:
        _reclaim(g, t, g.cfg.wmark_high + need)
    p = _alloc0(g) if order == 0 else _buddy_alloc(g, order)
    if p < 0 and order == 0:
        raise RuntimeError("guest model: out of memory (nothing left to reclaim)")
    return p


# -- the operations workloads call ------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, _nrt=False)
def kmem_alloc(g, key0, order, t):
    """Kernel memory for keys ``key0..``: a block of ``2**order`` frames (single frames if none is
    free), SET_STABLE and WRITE each, never reclaimed (kernel stacks, page tables, socket buffers)."""
    _flush(g, t)
    n = 1 << order
    p = _take(g, order, t)
    for i in range(n):
        q = p + i if p >= 0 else _take(g, 0, t)
        _bind(g, q, key0 + i, False)
        g.kind[q] = K_KERNEL
        emit(g, t, q, _S)
        emit(g, t, q, _WRITE)
    g.sc[S_KERNEL] += n
    return compute(g, t, g.cfg.zero_ns * n)


@nb.njit(cache=True, nogil=True, _nrt=False)
def kmem_free(g, key0, order, t):
    """Free the kernel memory of keys ``key0..``: SET_UNUSED each; a whole block goes back whole."""
    n = 1 << order
    p0 = g.where[key0]
    whole = p0 % n == 0
    for i in range(1, n):
        whole = whole and g.where[key0 + i] == p0 + i
    for i in range(n):
        p = g.where[key0 + i]
        emit(g, t, p, _U)
        g.where[key0 + i] = NO_PAGE
        g.key[p] = -1
        g.kind[p] = K_FREE
        if not whole:
            _free0(g, p)
    g.sc[S_KERNEL] -= n
    if whole:
        _buddy_free(g, p0, order)
    return t


@nb.njit(cache=True, nogil=True, _nrt=False)
def kernel_reserve(g, p0, n, t):
    """Mark frames ``p0..p0+n-1`` (below ``cfg.reserved``) as the kernel's: SET_STABLE, WRITE."""
    for p in range(p0, p0 + n):
        g.kind[p] = K_KERNEL
        emit(g, t, p, _S)
        emit(g, t, p, _WRITE)
    g.sc[S_KERNEL] += n
    return t


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def anon_alloc(g, key, t):
    """Fault in a fresh anonymous page for ``key``."""
    _flush(g, t)
    p = _take(g, 0, t)
    start = compute(g, t, g.cfg.zero_ns)
    _bind(g, p, key, False)
    _add_anon(g, p)
    emit(g, start, p, _S)
    emit(g, start, p, _WRITE)
    return start + g.cfg.zero_ns


@nb.njit(cache=True, nogil=True, _nrt=False)
def anon_alloc_block(g, key0, order, t):
    """``2**order`` anonymous pages for keys ``key0..`` in one block (single pages if none is free)."""
    _flush(g, t)
    n = 1 << order
    p = _take(g, order, t)
    if p < 0:
        for i in range(n):
            t = anon_alloc(g, key0 + i, t)
        return t
    start = compute(g, t, g.cfg.zero_ns * n)
    for i in range(n):
        _bind(g, p + i, key0 + i, False)
        _add_anon(g, p + i)
        emit(g, start, p + i, _S)
        emit(g, start, p + i, _WRITE)
    return start + g.cfg.zero_ns * n


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def anon_touch(g, key, write, t):
    """Access the anonymous page of ``key`` (swapping it in first if it was swapped out)."""
    _flush(g, t)
    p = g.where[key]
    if p == SWAPPED:
        p = _take(g, 0, t)
        _bind(g, p, key, False)
        _add_anon(g, p)
        emit(g, t, p, _S)
        t = disk_io(g, t, g.cfg.disk_read_ns)
        emit(g, t, p, _WRITE)
        g.sc[S_SWAPPED] -= 1
        g.sc[S_SWAP_INS] += 1
    elif p < 0:
        raise RuntimeError("guest model: access to a key with no page")
    g.flags[p] |= F_REF
    emit(g, t, p, _WRITE if write else _READ)
    return t


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def page_free(g, key, t):
    """Free the page of ``key`` (anonymous or file), or forget its swap slot; a no-op if it has none."""
    p = g.where[key]
    if p >= 0:
        _release(g, p, t)
    elif p == SWAPPED:
        g.where[key] = NO_PAGE
        g.sc[S_SWAPPED] -= 1
    return t


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def file_read(g, key, mapped, t):
    """Read one file page through the page cache (a miss waits for the disk)."""
    _flush(g, t)
    p = g.where[key]
    if p >= 0:
        start = compute(g, t, g.cfg.copy_ns)
        if g.kind[p] == K_CLEAN:
            emit(g, start, p, _SIR)
            emit(g, start, p, _READ)
            emit(g, start, p, _clean_op(g, p))
            f = g.flags[p]
            if f & F_ACTIVE:
                g.flags[p] = f | F_REF
            elif f & F_REF:
                _unlist(g, p)
                g.flags[p] = (f & F_MAPPED) | F_ACTIVE
                _push(g, L_ACTIVE, p)
                g.sc[S_ACTIVE] += 1
                if f & F_MAPPED:
                    g.sc[S_MAPPED_CLEAN] += 1
            else:
                g.flags[p] = f | F_REF
        else:
            emit(g, start, p, _READ)
        g.sc[S_HITS] += 1
        return start + g.cfg.copy_ns
    p = _take(g, 0, t)
    _bind(g, p, key, mapped)
    emit(g, t, p, _S)
    t = disk_io(g, t, g.cfg.disk_read_ns)
    emit(g, t, p, _WRITE)
    emit(g, t, p, _clean_op(g, p))
    _add_clean(g, p)
    g.sc[S_MISSES] += 1
    return compute(g, t, g.cfg.copy_ns)


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def file_write(g, key, mapped, t):
    """Write one whole file page (new data) through the page cache: the page becomes dirty."""
    _flush(g, t)
    p = g.where[key]
    if p < 0:
        p = _take(g, 0, t)
        start = compute(g, t, g.cfg.copy_ns)
        _bind(g, p, key, mapped)
        emit(g, start, p, _S)
        emit(g, start, p, _WRITE)
        if mapped:
            emit(g, start, p, _P)
            emit(g, start, p, _WRITE)
        _add_dirty(g, p, start)
        return start + g.cfg.copy_ns
    start = compute(g, t, g.cfg.copy_ns)
    if g.kind[p] == K_CLEAN:
        _unlist(g, p)
        if g.flags[p] & F_MAPPED:
            emit(g, start, p, _WRITE)
        else:
            emit(g, start, p, _SIR)
            emit(g, start, p, _WRITE)
            emit(g, start, p, _S)
        _add_dirty(g, p, start)
    else:
        emit(g, start, p, _WRITE)
    return start + g.cfg.copy_ns


@nb.njit(cache=True, nogil=True, _nrt=False, inline="always")
def log_append(g, key, offset_bytes, add_bytes, pages, t):
    """Append ``add_bytes`` to a wrapping log of ``pages`` file pages from file key
    ``key``, at ``offset_bytes``, and write the page its end lands on.

    Returns the new offset (bytes) and the time (ns)."""
    size_bytes = pages * 4096
    # Kept within the log, so that no number of appends overflows int64.
    offset_bytes = (offset_bytes + add_bytes % size_bytes) % size_bytes
    return offset_bytes, file_write(g, key + offset_bytes // 4096, False, t)
