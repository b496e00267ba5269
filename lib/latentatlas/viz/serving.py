"""What every served session of the apps needs before its views are built."""

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
