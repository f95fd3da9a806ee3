"""The examples run: the quick-start notebook is executed cell by cell in a real Jupyter kernel."""

import nbformat
from nbclient import NotebookClient

from .conftest import REPO

EXAMPLES = REPO / "examples"


def test_the_quick_start_notebook_runs(imagenet_weights):
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # saved clean
    where = {"metadata": {"path": str(EXAMPLES)}}
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources=where).execute()
    text = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells if cell.cell_type == "code"]
    table = text[3]
    assert "## PSNR (dB)" in table and "| patchmatch |" in table and "LPIPS VGG" in table
    assert "model.safetensors" in "".join(str(o) for o in notebook.cells[5].outputs)
    assert text[4].startswith("best PSNR: ")
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the fills and the plot
