"""The scalars of one budget's engine state between chunks (a row of ``sc`` in
:class:`cmmsim.replay.engine.EngineState`), by index.

``SC_RESIDENT`` resident frames; ``SC_HAND`` CLOCK's hand (the marker of
:mod:`cmmsim.replay.marker`, which exact LRU's marker replay keeps there); ``SC_NEXT_SLOT``
the next free time slot; ``SC_SAMPLE`` the next state sample; ``SC_TAKEN`` the
victims the last call took from its list under the engine's ``ORDER_GIVEN``.
"""

SC_RESIDENT, SC_HAND, SC_NEXT_SLOT, SC_SAMPLE, SC_TAKEN = range(5)
N_SCALARS = 5
