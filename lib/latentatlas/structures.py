"""The built-in structure benchmark: diverse, deterministic, built from ASE alone in seconds.

It mimics the subsets of the MAD dataset used by Chorna et al. (arXiv:2512.05717) with
structures every shipped model supports (elements in both CHGNet's 1-94 and SevenNet's 89;
no noble gases; Rb and Cs only in compounds). ``atoms.info["subset"]`` labels each frame:

========== ===== ====== ======================================================================
subset     count atoms  what
========== ===== ====== ======================================================================
bulk         118   1968 ideal crystals: 54 elements in their ASE reference structure
                        (fcc/bcc/hcp/diamond) and 64 binaries (rock salt, zinc blende,
                        CsCl, fluorite, wurtzite), repeated to >= 16 atoms
rattled      236   3936 each bulk crystal twice, randomly strained (<= 4 %) and rattled
                        (Gaussian, sigma 0.05 and 0.15 Å)
random       150   3600 fcc (32 atoms) / bcc (16 atoms) cells with 2-4 random metals,
                        Vegard-law bond length, rattled 0.05 Å
surface       91   2457 3x3x3 slabs: fcc (100)/(110)/(111), bcc (100)/(110), hcp (0001),
                        7.5 Å vacuum on each side, ``pbc=(True, True, False)``
cluster      100   2728 icosahedra of 13 and 55 atoms of single metals, and rattled
                        random binary 13/55-atom icosahedra
molecule     148    846 ASE's g2 set, molecules of >= 2 atoms in which every atom has a
                        neighbour within 5 Å
========== ===== ====== ======================================================================

Totals (seed 0): 843 structures, 15,535 atoms, 75 elements; every atom has a neighbour
within 4.6 Å, inside the smallest model cutoff (5 Å) (``builtin_summary()``).
Clusters and molecules have no periodicity: they sit in a box with 6 Å of vacuum and
``pbc=False`` (the box is only for viewers; the featurisers treat them as isolated).
``small=True`` gives a 52-structure, 434-atom version with the same subsets, for tests
and quick demos.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["SUBSETS", "builtin_frames", "builtin_summary"]

SUBSETS = ("bulk", "rattled", "random", "surface", "cluster", "molecule")

_FCC = "Al Ca Ni Cu Sr Rh Pd Ag Ce Yb Ir Pt Au Pb".split()
# Rb and Cs are left out: their bcc bond (4.8-5.3 Å) reaches the 5 Å cutoff of CHGNet 0.2.0
# and SevenNet, whose graphs would then have isolated atoms.
_BCC = "Li Na K V Cr Fe Nb Mo Ba Eu Ta W".split()
_HCP = "Be Mg Sc Ti Co Zn Y Zr Tc Ru Cd La Pr Nd Gd Tb Dy Ho Er Tm Lu Hf Re Os Tl".split()
_DIAMOND = "C Si Ge".split()

# (formula, structure, a[, c]) with experimental lattice constants in Å
_BINARIES = [
    *[(f, "rocksalt", a) for f, a in [
        ("LiF", 4.03), ("NaCl", 5.64), ("KCl", 6.29), ("MgO", 4.21), ("CaO", 4.81), ("SrO", 5.16),
        ("BaO", 5.52), ("LiCl", 5.13), ("NaF", 4.63), ("KBr", 6.60), ("RbI", 7.34), ("AgCl", 5.55),
        ("PbS", 5.94), ("TiN", 4.24), ("ZrN", 4.58), ("ScN", 4.50), ("TiC", 4.33), ("ZrC", 4.70),
        ("HfC", 4.64), ("VN", 4.14), ("NbC", 4.47), ("NiO", 4.18), ("MnO", 4.44), ("CoO", 4.26),
    ]],
    *[(f, "zincblende", a) for f, a in [
        ("GaAs", 5.65), ("InP", 5.87), ("ZnS", 5.41), ("ZnSe", 5.67), ("CdTe", 6.48), ("SiC", 4.36),
        ("BN", 3.62), ("AlP", 5.46), ("GaN", 4.50), ("CuCl", 5.41), ("AlAs", 5.66), ("GaP", 5.45),
        ("InAs", 6.06), ("InSb", 6.48), ("ZnTe", 6.10), ("CdS", 5.83), ("BP", 4.54),
    ]],
    *[(f, "cesiumchloride", a) for f, a in [
        ("CsCl", 4.12), ("CsBr", 4.29), ("CsI", 4.57), ("NiAl", 2.88), ("FeAl", 2.91), ("CuZn", 2.95),
        ("TlCl", 3.84), ("AgMg", 3.31), ("CoAl", 2.86), ("RuAl", 2.99),
    ]],
    *[(f, "fluorite", a) for f, a in [
        ("CaF2", 5.46), ("SrF2", 5.80), ("BaF2", 6.20), ("CeO2", 5.41), ("ZrO2", 5.07), ("HfO2", 5.12),
        ("PbF2", 5.94), ("CdF2", 5.39), ("UO2", 5.47), ("ThO2", 5.60),
    ]],
    ("ZnO", "wurtzite", 3.25, 5.21),
    ("GaN", "wurtzite", 3.19, 5.19),
    ("AlN", "wurtzite", 3.11, 4.98),
]

_SMALL = {"fcc": ["Cu", "Al"], "bcc": ["Fe"], "hcp": ["Mg"], "diamond": ["Si"], "binaries": [0, 24, 41]}


def builtin_frames(small: bool = False, seed: int = 0) -> list:
    """The built-in benchmark structures (see the module docstring for the composition).

    Parameters
    ----------
    small : bool
        A 52-structure, 434-atom version with the same subsets (tests, demos).
    seed : int
        Seed of every random choice; the same seed always gives the same frames.

    Returns
    -------
    list of ase.Atoms
        Each with ``info["subset"]`` in :data:`SUBSETS` and ``info["name"]``.
    """
    rngs = dict(zip(SUBSETS, np.random.default_rng(seed).spawn(len(SUBSETS))))
    if small:
        fcc, bcc, hcp, diamond = _SMALL["fcc"], _SMALL["bcc"], _SMALL["hcp"], _SMALL["diamond"]
        binaries = [_BINARIES[i] for i in _SMALL["binaries"]]
    else:
        fcc, bcc, hcp, diamond, binaries = _FCC, _BCC, _HCP, _DIAMOND, _BINARIES
    min_atoms = 4 if small else 16
    bulk = _bulk(fcc + bcc + hcp + diamond, binaries, min_atoms)
    metals = fcc + bcc + hcp
    groups = {
        "bulk": bulk,
        "rattled": _rattled(bulk, rngs["rattled"]),
        "random": _random_alloys(metals, 6 if small else 150, small, rngs["random"]),
        "surface": _surfaces(fcc, bcc, hcp, (2, 2, 2) if small else (3, 3, 3)),
        "cluster": _clusters(metals, small, rngs["cluster"]),
        "molecule": _molecules(small),
    }
    frames = []
    for subset in SUBSETS:
        for atoms in groups[subset]:
            atoms.info["subset"] = subset
            frames.append(atoms)
    return frames


def builtin_summary(frames=None) -> dict[str, tuple[int, int]]:
    """``{subset: (n_structures, n_atoms)}`` of ``frames`` (default: the full benchmark)."""
    frames = builtin_frames() if frames is None else frames
    out = {}
    for atoms in frames:
        n, m = out.get(atoms.info["subset"], (0, 0))
        out[atoms.info["subset"]] = (n + 1, m + len(atoms))
    return out


def _supercell(atoms, min_atoms: int):
    """Repeat along the shortest cell vector until there are at least ``min_atoms`` atoms."""
    reps = np.ones(3, dtype=int)
    while len(atoms) * reps.prod() < min_atoms:
        reps[np.argmin(atoms.cell.lengths() * reps)] += 1
    return atoms.repeat(tuple(reps))


def _bulk(elements, binaries, min_atoms):
    from ase.build import bulk

    frames = []
    for el in elements:
        atoms = bulk(el, orthorhombic=True) if el in _HCP else bulk(el, cubic=True)
        atoms.info["name"] = f"{el} ({atoms.info.get('crystalstructure', 'ref')})"
        frames.append(_supercell(atoms, min_atoms))
    for formula, kind, a, *c in binaries:
        atoms = bulk(formula, kind, a=a, c=c[0] if c else None, **({} if kind == "wurtzite" else {"cubic": True}))
        atoms.info["name"] = f"{formula} ({kind})"
        frames.append(_supercell(atoms, min_atoms))
    return frames


def _rattled(bulk, rng):
    frames = []
    for atoms in bulk:
        for sigma in (0.05, 0.15):
            new = atoms.copy()
            strain = rng.uniform(-0.04, 0.04, (3, 3))
            new.set_cell(new.cell.array @ (np.eye(3) + (strain + strain.T) / 2), scale_atoms=True)
            new.positions += rng.normal(0.0, sigma, new.positions.shape)
            new.info["name"] = f"{atoms.info['name']} rattled {sigma} Å"
            frames.append(new)
    return frames


@functools.lru_cache(maxsize=None)
def _nn_distance(symbol: str) -> float:
    """Nearest-neighbour distance (Å) of an element in its ASE reference crystal."""
    from ase.build import bulk
    from ase.neighborlist import neighbor_list

    return float(neighbor_list("d", bulk(symbol), 6.0).min())


def _random_alloys(metals, count, small, rng):
    from ase.build import bulk

    frames = []
    for i in range(count):
        symbols = list(rng.choice(metals, size=rng.integers(2, 5), replace=False))
        d = np.mean([_nn_distance(s) for s in symbols])  # Vegard's law on the bond length
        if i % 2 == 0:
            atoms = bulk("Cu", "fcc", a=d * np.sqrt(2), cubic=True).repeat(1 if small else 2)
        else:
            atoms = bulk("Fe", "bcc", a=d * 2 / np.sqrt(3), cubic=True).repeat(2)
        atoms.set_chemical_symbols(rng.choice(symbols, size=len(atoms)))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        atoms.info["name"] = f"random {'fcc' if i % 2 == 0 else 'bcc'} {'-'.join(sorted(set(atoms.get_chemical_symbols())))}"
        frames.append(atoms)
    return frames


def _surfaces(fcc, bcc, hcp, size):
    from ase import build

    makers = [
        *[(el, f, getattr(build, f)) for el in fcc for f in ("fcc100", "fcc110", "fcc111")],
        *[(el, f, getattr(build, f)) for el in bcc for f in ("bcc100", "bcc110")],
        *[(el, "hcp0001", build.hcp0001) for el in hcp],
    ]
    frames = []
    for el, facet, make in makers:
        atoms = make(el, size=size, vacuum=7.5)
        atoms.info["name"] = f"{el} {facet} slab"
        frames.append(atoms)
    return frames


def _isolated(atoms):
    atoms.center(vacuum=6.0)
    atoms.pbc = False
    return atoms


def _clusters(metals, small, rng):
    from ase.cluster import Icosahedron

    frames = []
    pure_13 = metals[:4] if small else metals
    pure_55 = metals[:1] if small else metals[::2]
    for el in pure_13:
        frames.append(Icosahedron(el, noshells=2, latticeconstant=_nn_distance(el) * np.sqrt(2)))
    for el in pure_55:
        frames.append(Icosahedron(el, noshells=3, latticeconstant=_nn_distance(el) * np.sqrt(2)))
    for i in range(2 if small else 100 - len(frames)):
        pair = list(rng.choice(metals, size=2, replace=False))
        shells = 2 if small or i % 3 else 3
        atoms = Icosahedron(pair[0], noshells=shells, latticeconstant=np.mean([_nn_distance(s) for s in pair]) * np.sqrt(2))
        atoms.set_chemical_symbols(rng.choice(pair, size=len(atoms)))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    for atoms in frames:
        atoms.info["name"] = f"{atoms.get_chemical_formula()} icosahedron"
        _isolated(atoms)
    return frames


def _molecules(small):
    from ase.collections import g2
    from ase.neighborlist import neighbor_list

    names = sorted(g2.names)
    frames = []
    for name in names:
        atoms = g2[name]
        if len(atoms) < 2:
            continue
        # every atom needs a neighbour well inside the smallest model cutoff (5 Å), else
        # the models see isolated atoms
        if len(np.unique(neighbor_list("i", atoms, 4.5))) < len(atoms):
            continue
        atoms.info = {"name": name}
        frames.append(_isolated(atoms))
    return frames[::25] if small else frames
