"""Figures and progress bars in a real Jupyter kernel (nbclient + ipykernel).

Importing decrimkit must not choose a matplotlib backend: in a notebook ``result.plot()`` shows its
figure (an ``image/png`` output of the inline backend) and the user's own ``plt.show()`` keeps
working. The kernel starts without the test session's ``MPLBACKEND=Agg``, as a user's would.
"""

from __future__ import annotations

import os

import nbclient
import nbformat

CELLS = [
    # decrimkit (and its plotting module) imported before pyplot, as a user would
    "import decrimkit\nimport decrimkit.plotting\nfrom decrimkit import Panel\n"
    "from decrimkit.datasets import load_dataset\nfrom decrimkit.estimators import did\n"
    "import matplotlib\nimport matplotlib.pyplot as plt\nprint(matplotlib.get_backend())",
    "df = load_dataset('mpdta')\n"
    "panel = Panel.from_frame(df, unit='countyreal', time='year', outcome='lemp', cohort='first.treat')\n"
    "res = did.att_gt(panel, n_boot=0).aggregate('dynamic')\n"
    "res.plot()",
    "fig = res.plot()",
    "plt.figure()\nplt.plot([0, 1], [1, 0])\nplt.show()",
    # interactive mode survives decrimkit's style context: a figure without plt.show() still displays
    "print(matplotlib.is_interactive())\nplt.plot([0, 1], [0, 1]);",
    # progress bars are notebook-aware: on in a kernel (stderr is no terminal) unless DECRIMKIT_PROGRESS=0
    "import os\nfrom decrimkit.progress import progress_enabled, stages\nprint(progress_enabled())\n"
    "del os.environ['DECRIMKIT_PROGRESS']\nprint(progress_enabled())\n"
    "with stages('study demo', total=1) as step:\n    step('models')",
]


def _images(cell: dict) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell["outputs"])


def test_plot_and_plt_show_display_in_a_notebook(tmp_path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel picks its own backend
    env.update(DECRIMKIT_PROGRESS="0", JUPYTER_PLATFORM_DIRS="1", MPLCONFIGDIR=str(tmp_path))
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)

    first, plotted, assigned, shown, auto, progress = nb.cells
    backend = "".join(out.get("text", "") for out in first["outputs"] if out["output_type"] == "stream")
    assert "inline" in backend, backend
    # res.plot() as a cell's last expression displays its figure once (not by the display hook and again by
    # the inline backend's end-of-cell pass); assigned, the backend shows it once
    assert _images(plotted) == 1, plotted["outputs"]
    assert _images(assigned) == 1, assigned["outputs"]
    assert _images(shown) == 1, shown["outputs"]  # plt.show() still draws after import decrimkit
    assert auto["outputs"][0]["text"] == "True\n" and _images(auto) == 1, auto["outputs"]
    printed = "".join(out.get("text", "") for out in progress["outputs"] if out.get("name") == "stdout")
    assert printed.split() == ["False", "True"]
    bar = "".join(out.get("text", "") for out in progress["outputs"] if out.get("name") == "stderr")
    assert "study demo" in bar and "1/1 stages" in bar, progress["outputs"]
