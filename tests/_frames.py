"""Small sets of real structures shared by several test modules."""

from ase.build import bulk, molecule


def molecules_and_crystals(n_pairs, formula="CH3CH2OH", supercell=(2, 1, 1)):
    """``n_pairs`` rattled molecules (subset "molecule") and silicon crystals (subset "bulk"), alternating."""
    frames = []
    for i in range(n_pairs):
        mol = molecule(formula)
        mol.info["subset"] = "molecule"
        mol.rattle(0.05, seed=i)
        crystal = bulk("Si", "diamond", a=5.43) * supercell
        crystal.info["subset"] = "bulk"
        crystal.rattle(0.05, seed=i)
        frames += [mol, crystal]
    return frames
