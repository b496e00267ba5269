"""Featurisation speed: ours (every layer, one forward pass, no forces) vs each model's own prediction.

For every registered model, on the same structures, in one process:

* ours   -- ``get_featurizer(name).featurize(frames, cache=False)``: all layers, hooks, no gradient;
* theirs -- the model's own public energy prediction on the same frames:
  CHGNet ``predict_structure(task="e")`` (batched, same batch size), SevenNet's ASE
  calculator (its public path, which always computes forces and stress too), the ANI-1x
  member called as torchani documents for batches (padded molecules, energies only, no
  gradient), and for SOAP featomic's own ``compute``
  on the same (species-blind) systems, read out as one per-atom array with featomic's
  documented ``keys_to_samples`` / ``keys_to_properties``; for a metatomic model file,
  metatomic's ASE calculator ``MetatomicCalculator.run_model`` on batches of the same size,
  asked for the same feature outputs and the energy (its documented way to get features).

A model that cannot describe every structure of the sample (ANI-1x: H, C, N, O only) is
timed, on both sides, on every structure of the benchmark it can describe instead; the
``atoms`` column says how many atoms each model's sample has.

Each side runs ``--repeats`` times, alternating which goes first; both the wall-clock
and this process's CPU time are summed (on a shared machine the CPU-time ratio is the
reliable one). Then the whole built-in benchmark (843 structures, 15,535 atoms)
is featurised with every model, all layers, no cache (skipped with ``--quick`` or ``--no-full``).

The default models are every installed registry model plus the metatomic files shipped in
tests/data/metatomic (tiny PET and MACE trained by ``make models``).

Run:  python benchmarks/featurize.py [--quick | --no-full] [--models NAME|FILE.pt ...] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings
from importlib.util import find_spec
from pathlib import Path

import numpy as np


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU time of this process is robust to other load."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def theirs(featurizer, frames, batch_size):
    """A callable running the model's own public prediction on ``frames``."""
    backend = featurizer.backend
    if backend == "chgnet":
        from chgnet.model import CHGNet

        from latentatlas.features.chgnet import to_structure

        with contextlib.redirect_stdout(io.StringIO()):  # parameter count banner
            model = CHGNet.load(model_name=featurizer._variant, use_device="cpu", verbose=False)
        return lambda: model.predict_structure(
            [to_structure(a, featurizer.cutoff) for a in frames], task="e", batch_size=batch_size
        )
    if backend == "sevenn":
        from sevenn.calculator import SevenNetCalculator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = SevenNetCalculator(str(featurizer._path), modal=featurizer.modal, device="cpu")

        def run():
            for atoms in frames:
                atoms = atoms.copy()
                atoms.calc = calc
                atoms.get_potential_energy()

        return run
    if backend == "torchani":
        import torch
        from torchani.utils import pad_atomic_properties

        model = featurizer.model  # torchani's own pipeline for the member (tests: energies equal ANI1x's)

        def as_input(atoms):
            return {"species": torch.from_numpy(atoms.numbers).unsqueeze(0),
                    "coordinates": torch.tensor(atoms.positions, dtype=torch.float32).unsqueeze(0)}

        def run():
            # torchani's documented batch API: molecules padded together, periodic frames one by one
            molecules = [a for a in frames if not a.pbc.any()]
            with torch.no_grad():
                for start in range(0, len(molecules), batch_size):
                    batch = pad_atomic_properties([as_input(a) for a in molecules[start : start + batch_size]])
                    model((batch["species"], batch["coordinates"])).energies
                for atoms in (a for a in frames if a.pbc.any()):
                    x = as_input(atoms)
                    model((x["species"], x["coordinates"]), cell=torch.tensor(atoms.cell.complete().array, dtype=torch.float32),
                          pbc=torch.tensor(atoms.pbc)).energies

        return run
    if backend == "featomic":
        from ase import Atoms

        from latentatlas.frames import periodic_box

        def run():
            systems = []
            for atoms in frames:  # species-blind and boxed as ours (featomic rejects mixed periodicity)
                positions, cell = periodic_box(atoms, featurizer.cutoff)
                systems.append(Atoms(numbers=np.ones(len(atoms)), positions=positions, cell=cell, pbc=True))
            tensor = featurizer.calculator.compute(systems)
            return tensor.keys_to_samples("center_type").keys_to_properties(["neighbor_1_type", "neighbor_2_type"]).block().values

        return run
    if backend == "metatomic":
        from metatomic.torch import ModelOutput
        from metatomic_ase import MetatomicCalculator

        calc = MetatomicCalculator(str(featurizer.path), extensions_directory=featurizer.extensions_dir)
        outputs = {output: ModelOutput(sample_kind="atom") for output in featurizer._outputs.values()}
        outputs["energy"] = ModelOutput(unit="eV", sample_kind="system")

        def run():
            for start in range(0, len(frames), batch_size):
                calc.run_model(frames[start : start + batch_size], outputs)

        return run
    raise ValueError(f"no reference prediction for backend {backend}")


def describable(featurizer, frames) -> list:
    """The frames whose every element ``featurizer`` knows."""
    bad = featurizer.unsupported(frames)
    return [a for i, a in enumerate(frames) if i not in bad]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sample, no full-dataset run")
    parser.add_argument("--no-full", action="store_true", help="no full-dataset run (keeps the usual sample)")
    parser.add_argument("--models", nargs="+", help="registry names or metatomic model files (default: all available)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch-size", type=int, help="structures per pass (default: each model's own)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each side (default 2)")
    args = parser.parse_args(argv)

    import torch

    from latentatlas.features import get_featurizer, list_featurizers
    from latentatlas.structures import builtin_frames

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    full = builtin_frames()
    pool = builtin_frames(small=True) if args.quick else full
    # every 16th structure of the benchmark: all subsets, ~1,000 atoms
    sample = pool if args.quick else full[::16]
    n_full = sum(len(a) for a in full)
    shipped = sorted(str(p) for p in (Path(__file__).parents[1] / "tests" / "data" / "metatomic").glob("*.pt"))
    names = args.models or list_featurizers(available_only=True) + (shipped if find_spec("metatomic") else [])
    print(f"torch threads {torch.get_num_threads()}, batch size {args.batch_size or 'each model default'}, "
          f"{args.repeats} alternating repeats")
    print(f"throughput sample: {len(sample)} structures, {sum(len(a) for a in sample)} atoms (all subsets)")
    header = f"{'model':22s} {'atoms':>6s} {'ours atoms/s':>13s} {'theirs atoms/s':>15s} {'ratio wall':>11s} {'ratio CPU':>10s}"
    full_run = not (args.quick or args.no_full)
    if full_run:
        header += f" {'full dataset s':>15s}"
    print(header, flush=True)
    total = 0.0
    for name in names:
        f = get_featurizer(name)
        batch_size = args.batch_size or f.batch_size
        ours = lambda frames, f=f: f.featurize(frames, batch_size=batch_size, progress=False, cache=False)  # noqa: E731
        frames = sample if not f.unsupported(sample) else describable(f, pool)
        n_sample = sum(len(a) for a in frames)
        ref = theirs(f, frames, batch_size)
        # warm-up: model build and first allocations (the first pass in a process is slow);
        # ours on the whole sample since it is cheap, theirs on a few structures
        ours(frames), theirs(f, frames[:4], batch_size)()
        t = {"ours": np.zeros(2), "theirs": np.zeros(2)}
        for i in range(args.repeats):
            order = [("ours", lambda: ours(frames)), ("theirs", ref)]
            for side, fn in order if i % 2 == 0 else order[::-1]:
                t[side] += timed(fn)
        ratio = t["theirs"] / t["ours"]
        line = (
            f"{f.name:22s} {n_sample:6d} {args.repeats * n_sample / t['ours'][0]:13.0f}"
            f" {args.repeats * n_sample / t['theirs'][0]:15.0f} {ratio[0]:10.2f}x {ratio[1]:9.2f}x"
        )
        if full_run:
            wall, _ = timed(lambda: ours(describable(f, full)))
            total += wall
            line += f" {wall:15.1f}"
        print(line, flush=True)
    if full_run:
        print(f"whole built-in dataset ({len(full)} structures, {n_full} atoms), every model (on the structures it can describe), every layer: {total:.0f} s")


if __name__ == "__main__":
    main()
