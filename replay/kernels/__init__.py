"""Public numba building blocks of the replay kernels.

===================  ==========================================================
module               what it holds
===================  ==========================================================
``state_machine``    the guest/host page rules (DESIGN.md section 2) and their
                     transition tables: hints, host reclaim, page-in
``resident``         resident frames per guest: peak and event-weighted sums;
                     pages per state pair (the state samples)
``steps``            an event's steps common to the engine's kernel and the
                     marker replay: an access, a frame between guests, a hint
``scalars``          the indices of a budget's scalars in the engine state
``tier``             the host's fast swap tier before the disk
``slots``            resident pages in time slots: exact LRU, and exact LRU
                     inside reclaim classes (the engine's host orders)
``two_list``         Linux's active/inactive lists (the engine's two-list
                     host order)
``lru_list``         the intrusive doubly-linked LRU list (free page reporting,
                     the balloons, two-list, the tier)
``reclaim_classes``  the class rule of the lazy heaps (guest reclaim)
``lazy_heap``        the lazy min-heap of a guest's own reclaim order, one push
                     with compaction
``guest_reclaim``    a guest's own view of its pages and its reclaim inside a
                     limit (``static``, the balloons)
``bittree``          a set of integers with O(log64 n) insert, remove and max
``prefetch``         a cache prefetch hint
``guest_ranges``     the guest owning a global page, from the guests' page ranges
``merge``            the k-way merge of guests' time-ordered runs (streamed scenarios)
===================  ==========================================================

Their pure-Python twins live in ``tests/naive.py`` (test-only) or in
:mod:`cmmsim.replay.reference` (the engine's rules, a page at a time); the state
byte layouts are in :mod:`cmmsim.replay.states`.
"""
