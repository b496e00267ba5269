"""Opening a file a user uploads into a running app, without letting a bad file escape its session."""

from __future__ import annotations

import tempfile
from pathlib import Path


def open_upload(data: bytes | None, filename: str | None, open_file, *, message, busy) -> None:
    """Write uploaded bytes to a temporary file and call ``open_file(path, name)`` on it.

    Call it whenever the file widget's value or file name changes (a file of the same bytes
    under another name changes only the name).

    Any failure is shown in ``message`` (a ``pn.pane.Alert``) with the user's file name in
    place of the temporary path, and never raised: one bad file must not take down the
    server for every other session. ``busy`` shows a loading spinner meanwhile. A message
    left from an earlier file is cleared as soon as a new one arrives.
    """
    message.param.update(object="", visible=False)
    if not filename:  # the widget was cleared
        return
    name = Path(filename).name
    if not data:  # Panel's FileInput gives None for an empty file
        message.param.update(object=f"**Could not open {name}**: the file is empty (0 bytes); choose the "
                                    "file again, or check that it was written completely", visible=True)
        return
    busy.loading = True
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        try:
            path.write_bytes(data)
            open_file(path, name)
        except Exception as err:  # any failure must stay in this session's page, never kill the server
            text = str(err).replace(str(path), name)  # the user knows their file, not our temp folder
            message.param.update(object=f"**Could not open {name}**: {text}", visible=True)
        finally:
            busy.loading = False
