"""Executes every code cell of the Colab quickstart notebook in a real Jupyter kernel."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  assert sum(c.cell_type == "code" for c in nb.cells) >= 6
  monkeypatch.setenv("MPLBACKEND", "Agg")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
  assert "Paris" in outputs
  assert "top-1   vote" in outputs
  assert (tmp_path / "runs" / "quickstart_arc" / "results.json").exists()
  assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
