"""The built notebooks through a real Jupyter server, as JupyterLab fetches and runs them.

The server runs with jupytext's server extension loaded (it comes with the notebooks extra,
as for a learner): a notebook that claimed a paired ``.py`` file made it answer HTTP 500.
"""
import os

import pytest

from course.build import lesson_paths
from live_jupyter import NOTEBOOKS, KernelChannel, build_course, import_or_skip, served

import_or_skip("jupyter_server", "jupyter_server is not installed (the notebooks extra)")
import_or_skip("jupytext", "jupytext is not installed (the notebooks extra)")
nbformat = import_or_skip("nbformat", "nbformat is not installed (the notebooks extra)")

LESSONS = lesson_paths(NOTEBOOKS)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Every lesson built, student and solution versions, served by a Jupyter server."""
    folder = tmp_path_factory.mktemp("course")
    build_course(folder, options=["--solutions", str(folder / "solutions")])
    with served(str(folder), str(tmp_path_factory.mktemp("jupyter"))) as server:
        yield server


def test_the_server_runs_with_jupytext(course):
    assert course.get("/api/status")[0] == 200
    assert "[Jupytext Server Extension]" in course.log(), "jupytext's contents manager is not in use"


@pytest.mark.parametrize("version", ["student", "solutions"])
def test_every_built_notebook_opens_through_the_contents_api(course, version):
    status, listing = course.get(f"/api/contents/{version}")
    assert status == 200, listing
    names = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
    assert len(names) == len(LESSONS), names
    for name in names:
        status, model = course.get(f"/api/contents/{version}/{name}?type=notebook&content=1")
        assert status == 200, f"{version}/{name}: HTTP {status}: {model}"
        nb = nbformat.from_dict(model["content"])
        nbformat.validate(nb)
        assert any(cell.cell_type == "code" for cell in nb.cells), f"{version}/{name} has no code"


def test_a_student_notebook_runs_cell_by_cell_in_the_servers_kernel(course):
    name = "student/" + os.path.basename(LESSONS[0]).replace(".py", ".ipynb")
    status, model = course.get(f"/api/contents/{name}?type=notebook&content=1")
    assert status == 200, model
    status, session = course.post("/api/sessions", {"path": name, "type": "notebook", "name": name,
                                                    "kernel": {"name": "python3"}})
    assert status == 201, session
    channel = KernelChannel(course, session["kernel"]["id"])
    text, errors = [], []
    try:
        for cell in model["content"]["cells"]:
            if cell["cell_type"] == "code":
                cell_text, cell_errors = channel.execute(cell["source"])
                text.append(cell_text)
                errors += cell_errors
    finally:
        channel.close()
        course.delete(f"/api/sessions/{session['id']}")
    output = "".join(text)
    assert "[TODO] exercise 1.1 " in output, output[-2000:]
    for ename, evalue in errors:
        assert ename == "NotImplementedError" and evalue.startswith("exercise 1."), (ename, evalue)
