# JupyterLab settings for these notebooks (`make notebooks`; tests/test_ui_notebook.py uses them too):
# the server listens on this machine only and never asks the internet for anything by itself.
c = get_config()  # noqa: F821  (defined by Jupyter when it loads this file)

c.ServerApp.ip = "127.0.0.1"
# no news feed and no check for new JupyterLab releases (both fetched from the internet by default)
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# the extension manager would search PyPI; extensions come from `pip install` instead
c.LabApp.extension_manager = "readonly"
