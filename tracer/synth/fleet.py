"""``fleet``: hundreds of independently seeded guests on one host, with bursty demand.

Each guest runs one of the workloads, drawn by the weights in ``mix``
(``awm-server`` is one server of the ``awm`` scenario, its clients outside
the host), with the workload's defaults and the fleet's guest size, system
and device settings; web servers take ``web_request_rate`` requests per
second while busy. Guests boot at uniform times in ``[0, boot_spread_s]``
and their traces start there. Demand comes and goes: a guest's workload is
busy for exponential periods (mean ``on_s``) separated by idle ones (mean
``off_s``), both stretched and shrunk by a day compressed into ``day_s``
seconds (night at time 0: busy periods ``1 - day_amplitude`` times as long,
idle ones ``1 + day_amplitude`` times; the reverse at midday); the
daemons run throughout. Every guest has its own seed, so guests are
generated in parallel and the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from cmmsim.tracer.errors import ParamError
from cmmsim.tracer.params import need
from cmmsim.tracer.synth import Workload, awm, idle_after_boot, kernel_compile, phased, web_serving
from cmmsim.tracer.synth._plan import NO_GATE, STREAM_LAYOUT, GuestParams, GuestPlan
from cmmsim.tracer.synth._system import GateConf

#: Workload name -> (params class, one guest's plan from (params, seed)).
TYPES = {
    "web-serving": (web_serving.Params, lambda p, s: web_serving.plans(p, s)[0]),
    "kernel-compile": (kernel_compile.Params, lambda p, s: kernel_compile.plans(p, s)[0]),
    "awm-server": (awm.Params, lambda p, s: awm.server_plan(p, s, 0)),
    "phased": (phased.Params, lambda p, s: phased.plans(p, s)[0]),
    "idle-after-boot": (idle_after_boot.Params, lambda p, s: idle_after_boot.plans(p, s)[0]),
}


@dataclass(frozen=True)
class Params(GuestParams):
    guest_mib: int = field(default=1024, metadata={"help": "memory of every guest, MiB"})
    duration_s: float = field(
        default=1200.0,
        metadata={
            "help": "scenario time simulated, s (two compressed days by default; --events stops "
            "earlier or later instead)"
        },
    )
    guests: int = field(default=200, metadata={"help": "guests on the host (the paper targets n x 100)"})
    mix: str = field(
        default="web-serving:3,kernel-compile:2,awm-server:2,phased:1,idle-after-boot:2",
        metadata={
            "help": "workload:weight list the guests' workloads are drawn from "
            "(sets the fleet's composition by construction)"
        },
    )
    boot_spread_s: float = field(default=120.0, metadata={"help": "guests boot at uniform times up to this, s"})
    on_s: float = field(default=120.0, metadata={"help": "mean busy period of a guest's workload, s"})
    off_s: float = field(
        default=240.0,
        metadata={
            "help": "mean idle period between busy ones, s (with on_s it sets the share of time a guest is "
            "busy, about on_s / (on_s + off_s), by construction)"
        },
    )
    day_s: float = field(default=600.0, metadata={"help": "length of the compressed day, s (0: no day)"})
    day_amplitude: float = field(
        default=0.8, metadata={"help": "how much the day stretches busy and idle periods (0..1)"}
    )
    web_request_rate: float = field(default=400.0, metadata={"help": "requests per second of a busy web-serving guest"})

    def __post_init__(self):
        super().__post_init__()
        need(1 <= self.guests <= 65535, "guests must be 1..65535")
        try:
            weights = self.weights()
        except ValueError:
            weights = {}
        need(
            bool(weights)
            and all(w >= 0 for w in weights.values())
            and sum(weights.values()) > 0
            and set(weights) <= set(TYPES),
            f"mix must be workload:weight pairs over {', '.join(TYPES)}, weights >= 0, some > 0",
        )
        need(0 <= self.boot_spread_s < self.duration_s, "boot_spread_s must be in [0, duration_s)")
        need(self.on_s > 0 and self.off_s >= 0 and self.day_s >= 0, "on_s must be > 0, off_s and day_s >= 0")
        need(0 <= self.day_amplitude < 1, "day_amplitude must be in [0, 1)")
        need(self.web_request_rate > 0, "web_request_rate must be > 0")
        for kind, weight in weights.items():
            if weight > 0:
                try:
                    _guest_params(self, kind, self.duration_s)
                except ParamError as exc:
                    raise ParamError(f"{kind} guests of the fleet: {exc}") from None

    def weights(self) -> dict[str, float]:
        out = {}
        for item in self.mix.split(","):
            name, _, weight = item.strip().partition(":")
            out[name.strip()] = float(weight)
        return out


def _guest_params(p: Params, kind: str, duration_s: float) -> GuestParams:
    cls, _ = TYPES[kind]
    shared = {f.name: getattr(p, f.name) for f in fields(GuestParams)}
    # Each workload keeps its own CPU count; the fleet sets the rest of the guest.
    shared.pop("cpus")
    extra = {"request_rate": p.web_request_rate} if kind == "web-serving" else {}
    return cls(**shared | {"duration_s": duration_s} | extra)


def plans(p: Params, seed: int) -> list[GuestPlan]:
    layout = np.random.default_rng(np.random.SeedSequence([seed, STREAM_LAYOUT]))
    names = list(p.weights())
    w = np.array([p.weights()[n] for n in names])
    kinds = layout.choice(len(names), size=p.guests, p=w / w.sum())
    boots = np.sort(layout.uniform(0, p.boot_spread_s, p.guests))
    gate = GateConf(
        on_ns=int(p.on_s * 1e9), off_ns=int(p.off_s * 1e9), day_ns=int(p.day_s * 1e9), amplitude=p.day_amplitude
    )
    out = []
    for i, (k, boot_s) in enumerate(zip(kinds.tolist(), boots.tolist(), strict=True)):
        kind = names[k]
        guest_seed = int(np.random.SeedSequence([seed, 1000 + i]).generate_state(1)[0])
        gp = TYPES[kind][1](_guest_params(p, kind, p.duration_s - boot_s), guest_seed)
        out.append(
            replace(
                gp,
                name=f"g{i:04d}-{kind}",
                boot_t=int(boot_s * 1e9),
                gate=NO_GATE if kind == "idle-after-boot" else gate,
                meta={"workload": kind, "boot_s": boot_s, "guest_seed": guest_seed},
            )
        )
    return out


WORKLOAD = Workload(
    name="fleet",
    params=Params,
    plans=plans,
    summary="hundreds of guests mixing the workloads: staggered boots, busy/idle periods, a day",
    multi_guest=True,
)
