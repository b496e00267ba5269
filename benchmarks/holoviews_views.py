"""Would HoloViews make the dashboard's views cheaper to write without making pages slower?

Builds the FRE app's model map (the smallest view: a labelled scatter) from the shipped demo
comparison twice, side by side in one run: with Bokeh directly (``viz.fre.model_map``) and as
the equivalent HoloViews ``Points * Labels``, serialised as a served page would (``json_item``),
and prints the CPU time per figure and the ratio, plus HoloViews' one-off import cost.

HoloViews is not a dependency of latentatlas (this measurement is why:
``pip install holoviews`` to run it).
"""

from __future__ import annotations

import time


def main(repeats: int = 20) -> None:
    try:
        import holoviews as hv
    except ImportError:
        print("holoviews is not installed (pip install holoviews): nothing to compare")
        return
    from bokeh.embed import json_item

    from latentatlas.io import load
    from latentatlas.viz.fre.data import demo_comparison_paths
    from latentatlas.viz.fre.model_map import model_map_figure

    start = time.process_time()
    hv.extension("bokeh", logo=False)
    print(f"holoviews bokeh extension: {time.process_time() - start:.2f} s CPU once per process")
    ds = load(demo_comparison_paths()[0])

    def bokeh_map():
        return json_item(model_map_figure(ds, "gfre"))

    def holoviews_map():
        xy = ds["gfre_map"].transpose("source", "axis").values
        data = {"x": xy[:, 0], "y": xy[:, 1], "name": [str(s) for s in ds.source.values],
                "model": [str(m) for m in ds.source_model.values]}
        points = hv.Points(data, ["x", "y"], ["name", "model"]).opts(
            color="model", cmap="Category10", size=11, line_color="black", tools=["hover"], width=420, height=320)
        labels = hv.Labels(data, ["x", "y"], "name").opts(text_font_size="8pt", text_align="left")
        return json_item(hv.render(points * labels))

    cost = {}
    for build in (bokeh_map, holoviews_map) * 2:  # interleaved, the second round counts
        start = time.process_time()
        for _ in range(repeats):
            build()
        cost[build.__name__] = (time.process_time() - start) / repeats
    for name, seconds in cost.items():
        print(f"{name:14s} {1000 * seconds:7.1f} ms CPU per figure")
    print(f"ratio holoviews / bokeh: {cost['holoviews_map'] / cost['bokeh_map']:.2f}")


if __name__ == "__main__":
    main()
