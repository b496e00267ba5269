"""The 3D structure viewer (latentatlas.viz.structure) on real structures and the shipped demo comparisons, no browser.

In the browser: tests/test_ui_structure.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pn = pytest.importorskip("panel")


from bokeh.core.property.vectorization import field  # noqa: E402


@pytest.fixture(scope="module")
def levels():
    from latentatlas.viz.fre.data import demo_comparison_paths, load_levels

    return list(load_levels(demo_comparison_paths()).values())


def test_structure_scene_atoms_bonds_cell_and_errors():
    from ase.build import bulk, molecule
    from ase.data.colors import jmol_colors

    from latentatlas.viz.colour import colour_high
    from latentatlas.viz.structure import StructureScene, scene_data

    ch4 = molecule("CH4")
    scene = scene_data(ch4)
    atoms, lines = scene["atoms"], scene["lines"]
    assert len(lines["x0"]) == 4 and set(lines["color"]) == {"#999999"}  # four C-H bonds, no H-H, no cell
    carbon = list(atoms["element"]).index("C")
    assert atoms["index"][carbon] == 0 and atoms["group"][carbon] == "C"
    assert atoms["color"][carbon] == "#{:02x}{:02x}{:02x}".format(*np.round(255 * jmol_colors[6]).astype(int))
    # the default view only turns and centres the molecule: distances kept, sorted far to near
    xyz = np.column_stack([atoms["x"], atoms["y"], atoms["z"]])
    assert np.allclose(np.linalg.norm(xyz[:, None] - xyz[None], axis=2), ch4.get_all_distances()[np.ix_(
        atoms["index"], atoms["index"])])
    assert np.allclose(xyz.mean(axis=0), 0) and np.all(np.diff(atoms["z"]) >= 0)
    r = scene["bounds"]["x"][1]
    assert np.all(np.linalg.norm(xyz, axis=1) + atoms["radius"] <= r)

    si = bulk("Si", cubic=True)
    errors = np.arange(8.0)
    errors[3] = np.nan
    scene = scene_data(si, errors, "GFRE a → b")
    atoms, lines = scene["atoms"], scene["lines"]
    assert list(lines["color"]).count("#555555") == 12  # the unit cell's edges
    ends = np.array([[lines[f"{c}{e}"] for c in "xyz"] for e in "01"])  # (end, xyz, segment)
    assert np.allclose(np.linalg.norm(ends[0] - ends[1], axis=0)[lines["color"] == "#555555"], si.cell.lengths()[0])
    assert np.array_equal(atoms["error"], errors[atoms["index"]], equal_nan=True)
    order = np.argsort(atoms["index"])
    assert atoms["info"][order][7] == "GFRE a → b: 7.0000" and atoms["group"][order][7] == "GFRE a → b"
    assert atoms["info"][order][3] == "not in the test set" and atoms["group"][order][3] == "not in test set"
    # filled by error through the scene's mapper; each atom ringed in its element's Jmol colour
    silicon = "#{:02x}{:02x}{:02x}".format(*np.round(255 * jmol_colors[14]).astype(int))
    assert set(atoms["line"]) == {silicon} and set(scene["key"]["label"]) == {"Si"}
    assert list(scene["key"]["line"]) == [silicon]
    with pytest.raises(ValueError, match="one error per atom"):
        scene_data(si, errors[:5])

    view = StructureScene()
    view.show(si, errors, "GFRE a → b", "title", marked=2)
    assert view.colorbar.visible and view.colorbar.title == "colour scale (top: 98th percentile)"
    assert view.mapper.high == colour_high(errors) == 6.0  # 98th percentile of 0, 1, 2, 4, 5, 6, 7
    assert view.drawn.glyph.fill_color == field("error", view.mapper)
    assert np.array_equal(view.atoms.data["x"], view.atoms3d.data["x"])  # drawn as laid out until turned
    assert list(view.atoms.data["index"][view.atoms.data["mark"] == "selected"]) == [2]
    view.show(si, errors, high=2.5)
    assert view.mapper.high == 2.5 and not (view.atoms.data["mark"] == "selected").any()
    with pytest.raises(ValueError, match="marked atom 8 is not in this structure of 8 atoms"):
        view.show(si, errors, marked=8)
    view.show(ch4)
    assert not view.colorbar.visible and len(view.atoms3d.data["x"]) == 5
    assert view.drawn.glyph.fill_color == field("color") and len(view.key.data["label"]) == 0


def test_one_colour_scale_per_pair_shared_with_the_drilldown(levels):
    from latentatlas.viz import Atlas
    from latentatlas.viz.fre.data import per_atom_errors

    demo = levels[0]
    atlas = Atlas(demo)
    pair = atlas.matrix.pair
    errors = per_atom_errors(demo, "gfre", *pair)
    for k in (0, 19, 33):  # whatever structure is shown, the pair's scale, the drill-down's
        atlas.viewer.structure = k
        assert atlas.viewer.scene.mapper.high == atlas.drill.mapper.high == np.percentile(
            errors[np.isfinite(errors)], 98, method="lower")
    three_d, drill = atlas.viewer.scene.mapper, atlas.drill.mapper
    assert (three_d.palette, three_d.nan_color, three_d.high_color) == (drill.palette, drill.nan_color, drill.high_color)


def test_structure_level_colours_all_atoms_by_the_structures_error(levels):
    from latentatlas.viz import Atlas

    demo = levels[1]
    atlas = Atlas(demo)
    source, target = atlas.matrix.pair
    errors = demo["gfre_pointwise"].sel(source=source, target=target).values
    k = int(demo["test_structure"].values[3])
    atlas.drill.points.selected.indices = [3]
    viewer = atlas.viewer
    assert viewer.structure == k and viewer.color_by == "error" and viewer.atom is None  # a sample is no atom here
    drawn = viewer.scene.atoms.data
    assert np.all(drawn["error"] == errors[3]) and viewer.scene.mapper.high == atlas.drill.mapper.high
    assert all(i.endswith("(whole structure): " + f"{errors[3]:.4f}") for i in drawn["info"])
    assert viewer._note.visible and "one error per structure" in viewer._note.object
    untested = next(s for s in range(demo.sizes["structure"]) if s not in demo["test_structure"].values)
    viewer.structure = untested
    assert np.isnan(viewer.scene.atoms.data["error"]).all()
    table = viewer.error_table()
    assert list(table) == ["structure", "formula", "error"] and np.array_equal(table["structure"],
                                                                             np.sort(demo["test_structure"].values))
    viewer.color_by = "element"
    assert not viewer._note.visible and viewer.scene.drawn.glyph.fill_color == field("color")


def test_selected_atom_is_marked_in_its_structure(levels):
    from latentatlas.viz import Atlas

    demo = levels[0]
    atlas = Atlas(demo)
    atom = int(demo["test_atom"].values[40])
    atlas.drill.points.selected.indices = [40]
    structure = int(demo["atom_structure"].values[atom])
    assert atlas.drill.sample == atom and atlas.viewer.atom == atom and atlas.viewer.structure == structure
    first = int(np.flatnonzero(demo["atom_structure"].values == structure)[0])
    drawn = atlas.viewer.scene.atoms.data
    assert list(drawn["index"][drawn["mark"] == "selected"]) == [atom - first]
    atlas.viewer.structure = (structure + 1) % demo.sizes["structure"]  # the atom is elsewhere: no ring
    assert not (atlas.viewer.scene.atoms.data["mark"] == "selected").any()


def test_error_table_and_downloads_name_the_pair(levels, tmp_path):
    import pandas as pd
    import xarray as xr
    from ase.data import chemical_symbols

    from latentatlas.viz import StructureViewer
    from latentatlas.viz.fre.data import per_atom_errors

    demo = levels[0]
    errors = per_atom_errors(demo, "lfre", "soap:power_spectrum", "chgnet-0.3.0:last")
    viewer = StructureViewer(demo, atom_errors=errors, error_label="LFRE soap:power_spectrum → chgnet-0.3.0:last")
    tested = demo["test_atom"].values
    assert viewer._csv.filename == "LFRE_soap_power_spectrum_to_chgnet-0.3.0_last_per_atom.csv"
    assert viewer._netcdf.filename == "LFRE_soap_power_spectrum_to_chgnet-0.3.0_last_per_atom.nc"
    table = pd.read_csv(viewer._csv.callback())
    assert list(table.columns) == ["structure", "atom", "element", "error"]
    first = np.concatenate([[0], np.cumsum(demo["n_atoms"].values)])
    assert np.array_equal(first[table["structure"]] + table["atom"], np.sort(tested))
    assert np.array_equal(table["structure"], demo["atom_structure"].values[np.sort(tested)])
    assert table["element"].tolist() == [chemical_symbols[z] for z in demo["species"].values[np.sort(tested)]]
    assert np.allclose(table["error"], errors[np.sort(tested)])
    path = tmp_path / "errors.nc"
    path.write_bytes(viewer._netcdf.callback().read())
    saved = xr.load_dataset(path)
    assert saved.attrs["errors"] == "LFRE soap:power_spectrum → chgnet-0.3.0:last" and saved.attrs["level"] == "atom"
    assert saved["element"].values.tolist() == table["element"].tolist()
    assert np.allclose(saved["error"], table["error"])


def test_features_file_has_no_errors_to_colour_or_download():
    from latentatlas.structures import builtin_frames
    from latentatlas.features import get_featurizer
    from latentatlas.viz import StructureViewer

    features = get_featurizer("soap").featurize(builtin_frames(small=True)[:3], progress=False)
    viewer = StructureViewer(features, color_by="error")
    assert viewer._note.visible and "No errors to colour by" in viewer._note.object
    assert viewer._csv.disabled and viewer._netcdf.disabled
    assert viewer.scene.drawn.glyph.fill_color == field("color")
    with pytest.raises(ValueError, match="no errors to download"):
        viewer.error_table()
