"""A chip session: one chip for one run, opened once, every reservoir on a tile of its own.

``ChipSession`` opens a backend's macros as they are needed (a virtual chip of several
macros from one seed, emulated macros each behind its own pseudo-terminal, or one serial port
per macro), places every reservoir with a :class:`rram_lsm.placement.TileAllocator` (never
overlapping, never off the array), forms each tile exactly once, and records the placement
and each macro's ``identity()`` for the results JSON.

Default floorplan: the image reservoir on macro 0 and the audio reservoir on macro 1, each at
the array's origin, so a dataset lands on the same cells in every command (a standalone
``encode`` and the demo's pair give the same features). A tile whose macro does not exist or
is full goes to the first free place on any macro.
"""
from __future__ import annotations

import dataclasses

from lsm import LsmConfig, Reservoir
from lsm.reservoir import TiledReservoir

from ..errors import ConfigError, PlacementError
from ..mapping import plan_tiles
from ..placement import TileAllocator
from .backends import parse_backend, serial_urls

__all__ = ["FLOORPLAN", "ChipSession"]

FLOORPLAN = {"nmnist": 0, "fsdd": 1, "ntidigits": 1}
"""Preferred macro of each dataset's reservoir."""

VIRTUAL_MACROS = 64
"""How many macros a virtual chip (sim, emulator) may use (opened only when a tile lands on
them: a reservoir larger than one array is split over tiles by ``rram_lsm.mapping``)."""


class ChipSession:
    """The chip of one run (see the module docstring). Use it as a context manager."""

    def __init__(self, backend: str = "sim", *, chip_seed: int = 0, profile=None,
                 noise: bool = True, max_macros: int | None = None):
        self.backend = backend
        self.kind, url = parse_backend(backend)
        self.chip_seed = int(chip_seed)
        self.profile = profile
        self.noise = bool(noise)
        if max_macros is None:
            max_macros = len(serial_urls(url)) if self.kind == "serial" else VIRTUAL_MACROS
        self.max_macros = int(max_macros)
        self._macros: dict[int, object] = {}
        self._reservoirs: dict[str, Reservoir] = {}
        self._allocator: TileAllocator | None = None
        self._age_s = 0.0

    def __enter__(self) -> "ChipSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every macro opened. Idempotent."""
        from .threads import repin_torch_threads

        macros, self._macros = self._macros, {}
        for m in macros.values():
            m.close()
        # the simulator's parallel kernels reset torch's thread count (threads.py)
        repin_torch_threads()

    def macro(self, index: int = 0):
        """Macro ``index`` of the chip, opened on first use."""
        from .backends import open_backend

        if not 0 <= index < self.max_macros:
            raise PlacementError(f"macro {index} does not exist: backend {self.backend} has "
                                 f"{self.max_macros} macro(s)")
        if index not in self._macros:
            m = open_backend(self.backend, seed=self.chip_seed, profile=self.profile,
                             noise=self.noise, macro_index=index)
            if self._allocator is None:
                info = m.info()
                self._allocator = TileAllocator((info.rows, info.cols), self.max_macros)
            if self._age_s > 0:
                m.advance_time(self._age_s)
            self._macros[index] = m
        return self._macros[index]

    @property
    def allocator(self) -> TileAllocator:
        """The chip's tile allocator (opens macro 0 to learn the array's size)."""
        if self._allocator is None:
            self.macro(0)
        return self._allocator

    def reservoir(self, name: str, config: LsmConfig, *, macro: int | None = None,
                  region=None) -> Reservoir:
        """The reservoir called ``name``: placed and formed on first request, the same
        object afterwards (a tile is formed exactly once). ``macro``/``region`` override the
        floorplan."""
        if name in self._reservoirs:
            res = self._reservoirs[name]
            if res.config != config:
                raise ConfigError(f"reservoir {name!r} is already formed with another config")
            return res
        rows, cols = self.allocator.array_shape
        if macro is None and region is None and (config.tile_shape[0] > rows
                                                 or config.tile_shape[1] > cols):
            tilemap = plan_tiles(name, config.tile_shape[0], config.n_neurons, self.allocator)
            macros = {k: self.macro(k) for k in tilemap.macros}
            res = TiledReservoir.setup_tiled(macros, config, tilemap)
        else:
            placement = self._place(name, config.tile_shape, macro, region)
            res = Reservoir.setup(self.macro(placement.macro), config, placement.region)
        self._reservoirs[name] = res
        return res

    def _place(self, name, shape, macro, region):
        alloc = self.allocator
        if macro is not None or region is not None:
            return alloc.place(name, shape, macro=macro, region=region)
        preferred = FLOORPLAN.get(name, 0)
        if preferred < self.max_macros:
            try:
                return alloc.place(name, shape, macro=preferred)
            except PlacementError:
                pass
        return alloc.place(name, shape)

    def age(self, seconds: float) -> None:
        """Let the chip's clock reach ``seconds`` (drift); macros opened later start there."""
        if seconds < 0:
            raise ConfigError(f"chip age must be >= 0, got {seconds}")
        for m in self._macros.values():
            behind = seconds - m.clock_s()
            if behind > 0:
                m.advance_time(behind)
        self._age_s = max(self._age_s, float(seconds))

    def record(self) -> dict:
        """JSON-ready description of the chip: backend, seed, placement of every tile, and
        per macro its identity and forming of each tile on it."""
        macros = {}
        for index, m in sorted(self._macros.items()):
            ident = m.identity()
            macros[str(index)] = {k: v for k, v in ident.items() if k != "profile"}
            stats = getattr(m, "stats", None)  # a serial link counts what crossed the wire
            if stats is not None and hasattr(stats, "commands"):
                macros[str(index)]["wire_commands"] = dict(stats.commands)
        tiles = []
        for p in (self._allocator.placements if self._allocator else ()):
            entry = p.to_dict()
            res = self._reservoirs.get(p.name)
            if res is not None:
                entry["forming"] = dataclasses.asdict(res.forming)
            tiles.append(entry)
        for name, res in self._reservoirs.items():
            if isinstance(res, TiledReservoir):
                tiles.append({"name": name, "tiled": res.tilemap.to_dict(),
                              "forming": dataclasses.asdict(res.forming)})
        return {"backend": self.backend, "chip_seed": self.chip_seed, "noise": self.noise,
                "age_s": self._age_s, "max_macros": self.max_macros,
                "array": None if self._allocator is None else list(self._allocator.array_shape),
                "macros": macros, "tiles": tiles}
