"""The 3D structure viewer of the served dashboard (``panel serve app/atlas.py``) in headless Chromium.

What a scientist checks on it: colours that mean the same error as the drill-down's, structure-level
errors, the selected atom ringed, an element legend, the errors downloadable, a help box that fits.
Screenshots go to ``test-artifacts/structure-*.png``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("playwright")

from _ui import (  # noqa: E402
    ARTIFACTS,
    FIND_PLOT,
    UI_MARKS,
    Watch,
    browser_context_args,  # noqa: F401  (fixture)
    browser_type_launch_args,  # noqa: F401  (fixture)
    click_plot,
)
from test_ui_atlas import server  # noqa: E402, F401  (fixture: panel serve app/atlas.py)

pytestmark = UI_MARKS

DRILL = """() => {
    const v = (""" + FIND_PLOT + """)('drill_map');
    if (v == null) { return null; }  // not drawn yet (it follows the first view)
    const r = v.model.renderers[0], d = r.data_source.data;
    const heading = Bokeh.index.query_one((h) => h.model.name === 'drill_pair' && h.el.getClientRects().length > 0);
    return {title: heading == null ? '' : heading.model.text.replace(/<[^>]*>/g, ''), error: Array.from(d.error), structure: Array.from(d.structure),
            sample: Array.from(d.sample), x: Array.from(d.x), y: Array.from(d.y), mapper: r.glyph.fill_color.transform,
            selected: Array.from(r.data_source.selected.indices)};
}"""
# The atoms as drawn in the browser, and the colour each gets, next to the colour the drill-down's
# colour scale gives its error (the 3D fill is either a column of colours or a mapped field).
ATOMS = """() => {
    const v = (""" + FIND_PLOT + """)('structure');
    if (v == null || (""" + DRILL + """)() == null) { return null; }
    const r = v.model.renderers.find((r) => r.data_source.data.element != null);
    const d = r.data_source.data, fill = r.glyph.fill_color;
    const errors = Array.from(d.error);
    const drill = (""" + DRILL + """)().mapper;
    // a mapper gives packed RGBA numbers, a column names colours: compare them as #rrggbb
    const hex = (c) => typeof c == 'number' ? '#' + (c >>> 8).toString(16).padStart(6, '0') : String(c).toLowerCase();
    const shown = fill.transform != null ? Array.from(fill.transform.v_compute(errors)) : Array.from(d[fill.field]);
    const items = v.model.renderers.length && Bokeh.index.query_one((x) => x.model === v.model)
        .model.center.filter((m) => m.items != null).flatMap((legend) => legend.items)
        .flatMap((item) => item.get_labels_list_from_label_prop());
    return {title: v.model.title.text, index: Array.from(d.index), element: Array.from(d.element), error: errors,
            mark: d.mark == null ? null : Array.from(d.mark), legend: items, tags: Array.from(r.data_source.tags),
            colour: shown.map(hex), drill_colour: Array.from(drill.v_compute(errors)).map(hex)};
}"""
DRAWN = f"() => ({ATOMS})()?.index.length > 0"


@pytest.fixture(scope="module")
def levels():
    from latentatlas.viz.fre.data import demo_comparison_paths, load_levels

    return list(load_levels(demo_comparison_paths()).values())


def open_dashboard(page, url):
    page.goto(url)
    page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                           timeout=90_000)
    page.wait_for_function(DRAWN, timeout=90_000)


def open_sample(page, k: int) -> dict:
    """Tap drill-down sample ``k`` on the map; wait for its structure in 3D. Returns the drill-down's state."""
    drill = page.evaluate(DRILL)
    click_plot(page, "drill_map", drill["x"][k], drill["y"][k])
    structure = drill["structure"][k]
    page.wait_for_function(f"() => ({ATOMS})().title.startsWith('structure {structure}:')", timeout=20_000)
    return drill


def screenshot_structure(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    box = page.evaluate("() => { const v = (" + FIND_PLOT + """)('structure');
        v.el.scrollIntoView({block: "center"}); return v.el.getBoundingClientRect().toJSON(); }""")
    page.screenshot(path=ARTIFACTS / f"structure-{name}.png", clip={k: box[k] for k in ("x", "y", "width", "height")})


def test_error_colours_are_the_drilldowns_and_rings_mark_the_selected_atom(page, server, levels):
    """Items 1 and 3: one error, one colour in the 3D view and the drill-down; the selected atom is ringed."""
    watch = Watch(page)
    open_dashboard(page, server)
    demo = levels[0]
    drill = page.evaluate(DRILL)
    # a structure whose atoms' errors are far below the pair's top: a per-structure scale would stretch them
    high = np.percentile(drill["error"], 98)
    k = int(np.argmin(drill["error"]))
    assert drill["error"][k] < high / 4
    open_sample(page, k)
    atoms = page.evaluate(ATOMS)
    tested = np.isfinite(atoms["error"])
    assert tested.any()
    assert np.array(atoms["colour"])[tested].tolist() == np.array(atoms["drill_colour"])[tested].tolist()
    # the selected atom (a sample of the atom-level comparison; of several under the pointer, the worst)
    # wears the ring, and only it
    selected = page.evaluate(DRILL)["selected"]
    best = selected[int(np.argmax(np.array(drill["error"])[selected]))]
    sample, structure = drill["sample"][best], drill["structure"][best]
    first = int(np.flatnonzero(demo["atom_structure"].values == structure)[0])
    marked = [i for i, m in zip(atoms["index"], atoms["mark"]) if m == "selected"]
    assert marked == [sample - first]
    ring = page.evaluate("() => (" + FIND_PLOT + """)('structure').model.renderers
        .find((r) => r.name == 'structure_mark').view.filter.group""")
    assert ring == "selected"
    # turning the scene keeps its state in a dedicated source, not in the tags of the drawn one
    box = page.evaluate("() => { const v = (" + FIND_PLOT + """)('structure'); v.el.scrollIntoView({block: "center"});
        return v.canvas_view.el.getBoundingClientRect().toJSON(); }""")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 30, steps=5)
    page.mouse.up()
    turned = page.evaluate(ATOMS)
    assert turned["tags"] == []
    turn = page.evaluate("""() => { for (const doc of Bokeh.documents) {
        const m = doc.get_model_by_name('structure_turn'); if (m != null) { return Array.from(m.data.state); } } }""")
    assert turn is not None and not np.allclose(turn[:9], [1, 0, 0, 0, 1, 0, 0, 0, 1])
    screenshot_structure(page, "selected-atom")
    assert watch.errors == []


def test_element_legend_lists_the_elements_in_jmol_colours(page, server):
    """Item 4: coloured by error, the legend still says which element each ring colour is."""
    open_dashboard(page, server)
    atoms = page.evaluate(ATOMS)
    assert np.isfinite(atoms["error"]).any()  # the served dashboard opens coloured by error
    assert set(atoms["element"]) <= set(atoms["legend"])


def test_structure_level_colours_every_atom_by_its_structures_error(page, server, levels):
    """Item 2: at structure level, colour by error shows the structure's error on all its atoms."""
    watch = Watch(page)
    open_dashboard(page, server)
    level = page.locator("select:has(option:text-is('atom level'))")  # the level chooser
    level.select_option(index=1)
    structure_level = levels[1]
    page.wait_for_function(f"() => ({DRILL})().sample.length == {structure_level.sizes['test_structure']}",
                           timeout=30_000)
    drill = page.evaluate(DRILL)
    k = int(np.argmax(drill["error"]))
    open_sample(page, k)
    page.wait_for_function(f"() => ({ATOMS})().error.every((e) => Math.abs(e - {drill['error'][k]}) < 1e-6)",
                           timeout=20_000)
    atoms = page.evaluate(ATOMS)
    assert atoms["colour"] == atoms["drill_colour"] and len(set(atoms["colour"])) == 1
    page.get_by_text("Structure-level comparison: one error per structure").wait_for(timeout=5_000)
    screenshot_structure(page, "structure-level")
    assert watch.errors == []


def test_download_the_pairs_errors_as_csv_and_netcdf(page, server, levels):
    """Item 5: the shown pair's per-atom errors, named columns, pair and metric in the file name."""
    import pandas as pd
    import xarray as xr

    from latentatlas.viz.fre.data import per_atom_errors

    open_dashboard(page, server)
    demo = levels[0]
    title = page.evaluate(DRILL)["title"]
    source, target = title.split(": ")[0].split(" → ")
    errors = per_atom_errors(demo, "gfre", source, target)
    tested = np.flatnonzero(np.isfinite(errors))
    with page.expect_download(timeout=30_000) as got:
        page.get_by_role("button", name="CSV", exact=True).click()
    download = got.value
    assert download.suggested_filename.startswith("GFRE_") and download.suggested_filename.endswith(".csv")
    assert source.replace(":", "_") in download.suggested_filename
    table = pd.read_csv(download.path())
    assert list(table.columns) == ["structure", "atom", "element", "error"]
    first = np.concatenate([[0], np.cumsum(demo["n_atoms"].values)])
    assert np.array_equal(first[table["structure"]] + table["atom"], tested)
    assert np.allclose(table["error"], errors[tested], rtol=1e-6)
    from ase.data import chemical_symbols

    assert table["element"].tolist() == [chemical_symbols[z] for z in demo["species"].values[tested]]
    with page.expect_download(timeout=30_000) as got:
        page.get_by_role("button", name="netCDF", exact=True).click()
    assert got.value.suggested_filename.endswith(".nc")
    saved = xr.load_dataset(got.value.path())
    assert np.allclose(saved["error"].values, errors[tested], rtol=1e-6)
    assert saved.attrs["errors"] == f"GFRE {source} → {target}"


def test_help_fits_1024_px(browser, server):
    """Item 6: a "What is this?" box on the viewer; viewer, controls and help fit 1024 px without clipping."""
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    try:
        open_dashboard(page, server)
        page.get_by_text("What is this?").click()
        page.get_by_text("one error, one colour").wait_for(timeout=10_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "structure-help-1024.png", full_page=True)
        # (the rest of the page is the FRE app's layout, checked with it)
        for text in ("What is this?", "one error, one colour", "Colour atoms by", "Download errors"):
            box = page.get_by_text(text).first.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1024, text
        for name in ("CSV", "netCDF"):
            box = page.get_by_role("button", name=name, exact=True).bounding_box()
            assert box["x"] + box["width"] <= 1024, name
        plot = page.evaluate("() => (" + FIND_PLOT + ")('structure').el.getBoundingClientRect().toJSON()")
        assert plot["x"] >= 0 and plot["right"] <= 1024
        # nothing inside the help box is cut: its text wraps within it
        help_text = page.get_by_text("one error, one colour")
        assert help_text.evaluate("(e) => e.scrollWidth <= e.clientWidth")
    finally:
        page.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory, levels):
    """The static export of the built-in comparison (both levels), few structures."""
    from latentatlas.viz.export import export_html

    return export_html({"atom level": levels[0], "structure level": levels[1]},
                       tmp_path_factory.mktemp("export") / "report.html", max_structures=6)


def test_static_export_colours_the_picked_structure_by_the_clicked_pair(page, report, levels):
    """Item 1 in the static export: the structure switched in the browser takes the clicked pair's errors and scale."""
    from latentatlas.viz.fre.data import per_atom_errors

    watch = Watch(page)
    page.goto(report.as_uri())
    page.wait_for_function(f"() => window.Bokeh && Bokeh.index && ({DRAWN})()", timeout=90_000)
    demo = levels[0]
    names = [str(s) for s in demo["source"].values]
    source, target = names[0], names[-1]
    click_plot(page, "fre_matrix", target, source)
    page.wait_for_function(f"() => ({DRILL})().title.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    pick = page.locator("select").last
    label = pick.locator("option").nth(2).text_content()
    pick.select_option(label=label)
    page.wait_for_function(f"() => ({ATOMS})().title == {'structure ' + label!r}", timeout=10_000)
    atoms = page.evaluate(ATOMS)
    k = int(label.split(":")[0])
    first = int(np.concatenate([[0], np.cumsum(demo["n_atoms"].values)])[k])
    errors = per_atom_errors(demo, "gfre", source, target)[first + np.array(atoms["index"])]
    assert np.isfinite(errors).any()
    assert np.allclose(atoms["error"], errors, rtol=1e-6, equal_nan=True)
    tested = np.isfinite(errors)
    assert np.array(atoms["colour"])[tested].tolist() == np.array(atoms["drill_colour"])[tested].tolist()
    screenshot_structure(page, "static")
    assert watch.errors == []
