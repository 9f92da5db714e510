"""The committed tutorials carry the metadata JupyterLab writes, so opening one leaves git clean."""

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "notebooks" / "tutorials").glob("*.ipynb"))
KERNEL = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_metadata_is_what_jupyterlab_writes(path):
    installed = json.loads(KERNEL.read_text())
    raw = path.read_text()
    nb = nbformat.reads(raw, as_version=4)
    assert nb.metadata.kernelspec == {"display_name": installed["display_name"], "language": "python",
                                      "name": "python3"}
    assert raw == nbformat.writes(nb) + "\n"  # JupyterLab's layout: indent 1, trailing newline
