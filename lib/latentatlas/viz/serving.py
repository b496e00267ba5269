"""What the served apps share: local resources for every session, the first view before the rest, links between sibling apps."""

from __future__ import annotations

import panel as pn


def local_resources() -> None:
    """Point this session's stylesheets at this server, never at the HoloViz CDN.

    Panel writes its components' stylesheets as CDN addresses and rewrites them to the server's
    own ``static/`` folder when it renders the session's page. A session the page never rendered
    misses that rewrite: on a busy server the session made for the page is discarded as unused
    before the browser's websocket arrives (Bokeh's ``unused_session_lifetime``, 15 s), and the
    websocket gets a new one. Setting the address up front, as the page would, covers both.
    Does nothing outside a server session (notebooks, static exports choose their own).
    """
    from panel.io.resources import get_dist_path

    if served():
        pn.state.curdoc.template_variables.setdefault("dist_url", get_dist_path(cdn=False))


def served() -> bool:
    """Whether this code runs inside a server session (not a notebook, not a static export)."""
    return bool(pn.state.curdoc and pn.state.curdoc.session_context)


def after_first_view(build, min_height: int = 400):
    """The view ``build()`` returns, built and sent to the browser after the page's first view when served.

    The page's first document then holds only what comes before it (for the FRE app: the
    heatmap), so it is built, sent and drawn sooner; ``build`` runs once the browser has drawn
    that first view (``pn.state.onload``), while a loading indicator ``min_height`` pixels tall
    holds its place. ``build`` runs as a next-tick callback of the session's document, so it
    holds the document's lock and may change Bokeh models already on the page. Outside a server
    session (notebooks, static exports), once the page has loaded, and when Panel handles events
    on threads (``--num-threads``: there the page sometimes never received the rest in
    ``benchmarks/ui_latency.py``), ``build()`` is returned at once.
    """
    if not served() or pn.state.loaded or pn.config.nthreads is not None:
        return build()
    holder = pn.Column(loading=True, min_height=min_height, sizing_mode="stretch_width")

    def fill():
        holder.objects = [build()]
        holder.loading = False

    pn.state.onload(lambda: pn.state.execute(fill, schedule=True))
    return holder


def app_link(app: str, text: str) -> list:
    """A link to a sibling app of the same server, or nothing outside a server session.

    The apps are served side by side (``/atlas``, ``/concepts``), so the relative link
    works behind any prefix; in a notebook or a static file there is no sibling to link to.
    """
    return [pn.pane.Markdown(f"[{text}](./{app})", margin=(0, 10))] if served() else []
