"""`python -m bench.preload app.py [streamlit options]`: `streamlit run`, after importing what
the app imports, so the server's memory before any page opens is the code's alone and what a
page adds is data and sessions. Used only to measure memory.

What is imported: every module that app.py, ui.py and pages/*.py import at their top, the
parts of datalib the pages use (datalib imports them on first use; torch among them), and
Plotly's validators for the chart types the pages draw. No dataset is read.
"""

import ast
import importlib
import sys
from pathlib import Path

APP = Path.cwd()


def app_imports() -> list[str]:
    """The modules imported at the top of app.py, ui.py and the pages."""
    names: set[str] = set()
    for path in [APP / "app.py", APP / "ui.py", *sorted((APP / "pages").glob("*.py"))]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(names - {"__future__"})


def preload() -> None:
    for name in app_imports():
        importlib.import_module(name)
    import plotly.express as px
    import plotly.graph_objects as go

    # datalib imports its parts on first use: the ones the pages use (torch among them).
    for name in ("datalib.batches", "datalib.checks", "datalib.datasets", "datalib.stats"):
        importlib.import_module(name)
    # Plotly loads a trace type's validators on first use: tiny charts of the kinds drawn.
    px.bar(x=[0, 1], y=[1, 2], color=["a", "b"]).to_json()
    go.Figure(go.Heatmap(z=[[0, 1]])).to_json()


if __name__ == "__main__":
    sys.path.insert(0, str(APP))
    preload()
    from streamlit.web import cli

    cli.main(["run", *sys.argv[1:]], prog_name="streamlit")
