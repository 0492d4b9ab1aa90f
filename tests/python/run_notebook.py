"""Executes a notebook headless on the gapscope kernel with nbclient and checks its outputs:
no errors, an inline figure (image/png), an HTML table, and progress displays.

    python tests/python/run_notebook.py docs/notebook.ipynb WORKDIR [--write OUT.ipynb]

Cells run with WORKDIR as their folder (the notebook's relative paths land there). --write
saves the executed notebook, which is how docs/notebook.ipynb gets its committed outputs:
    python tests/python/run_notebook.py docs/notebook.ipynb /tmp/nb --write docs/notebook.ipynb
(JUPYTER_PATH must reach the kernelspec: `gapscope kernel install` puts it where Jupyter looks.)
"""
import sys

import nbformat
from nbclient import NotebookClient

src, workdir = sys.argv[1], sys.argv[2]
out = sys.argv[sys.argv.index("--write") + 1] if "--write" in sys.argv else None

nb = nbformat.read(src, as_version=4)
for cell in nb.cells:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
client = NotebookClient(nb, kernel_name="gapscope", timeout=900, resources={"metadata": {"path": workdir}})
client.execute()

outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
kinds = {o.output_type for o in outputs}
assert "error" not in kinds, [o for o in outputs if o.output_type == "error"]
pngs = [o for o in outputs if "image/png" in o.get("data", {})]
tables = [o for o in outputs if "<table" in o.get("data", {}).get("text/html", "")]
progress = [o for o in outputs if o.output_type == "display_data" and o.get("data", {}).get("text/plain", "").startswith("epoch ")]
assert pngs, "no inline figure"
assert tables, "no HTML table"
assert progress, "no progress display"
counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
assert counts == list(range(1, len(counts) + 1)), counts
print(f"notebook ok: {len(nb.cells)} cells, {len(pngs)} figure(s), {len(tables)} table(s), {len(progress)} progress display(s)")
if out:
    nbformat.write(nb, out)
