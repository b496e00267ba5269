"""What the served apps share: local resources for every session, links between sibling apps."""

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

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc.template_variables.setdefault("dist_url", get_dist_path(cdn=False))


def app_link(app: str, text: str) -> list:
    """A link to a sibling app of the same server, or nothing outside a server session.

    The apps are served side by side (``/atlas``, ``/concepts``), so the relative link
    works behind any prefix; in a notebook or a static file there is no sibling to link to.
    """
    session = pn.state.curdoc.session_context if pn.state.curdoc else None
    return [pn.pane.Markdown(f"[{text}](./{app})", margin=(0, 10))] if session else []
