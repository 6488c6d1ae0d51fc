"""``python -m course build``: what it writes, what it refuses, and what it never overwrites.

* the default build writes the student notebooks only; ``--solutions DIR`` adds the solutions;
* no solution and no answer leaks into a student notebook;
* markers are exact: a line that reads like one and is not one is an error naming file and line;
* every student notebook compiles, whatever a label holds;
* a rebuild keeps a notebook the learner changed (``--force`` overwrites it), refreshes one still
  as built, and the README's command to open the course is safe to run twice.
"""
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from course.build import (LessonFormatError, lesson_paths, main, marked_blocks, notebook, reads_like_a_marker,
                          solution_source, student_source)

pytest.importorskip("jupytext", reason="the notebooks extra is not installed")
nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
LESSONS = lesson_paths(NOTEBOOKS)
LESSON_1 = LESSONS[0]
NAME_1 = os.path.basename(LESSON_1).replace(".py", ".ipynb")
ENV = dict(os.environ, PYTHONPATH=ROOT)

HEADER = "# %% [markdown]\n# A lesson.\n\n"
EXERCISE = """# %%
def f(x):
    ### BEGIN SOLUTION exercise 1.1: double
    return 2 * x
    ### END SOLUTION
"""
QUESTION = """# %% [markdown]
# **Question 1.a.** Why twice?
#
# ### BEGIN ANSWER question 1.a
# Because the derivative of x squared is two x.
# ### END ANSWER
"""


def build(folder, *options):
    """``python -m course build --notebooks folder *options``, run in this process (its imports of
    jupytext and nbformat cost seconds a run); the exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["build", "--notebooks", str(folder), *options])
    return subprocess.CompletedProcess("python -m course build", code, out.getvalue(), err.getvalue())


def build_command(folder, *options, cwd=ROOT):
    """The same, as the learner runs it: a process of its own."""
    return subprocess.run([sys.executable, "-m", "course", "build", "--notebooks", str(folder), *options],
                          capture_output=True, text=True, cwd=cwd, env=ENV)


def lesson_folder(tmp_path, text=None):
    """A folder with lesson 1 (or a lesson ``01_lesson.py`` holding ``text``)."""
    folder = tmp_path / "lessons"
    folder.mkdir()
    if text is None:
        (folder / os.path.basename(LESSON_1)).write_text(open(LESSON_1, encoding="utf-8").read())
    else:
        (folder / "01_lesson.py").write_text(text)
    return folder


def code_cells(path):
    return [cell.source for cell in nbformat.read(str(path), as_version=4).cells if cell.cell_type == "code"]


def markdown_cells(path):
    return [cell.source for cell in nbformat.read(str(path), as_version=4).cells if cell.cell_type == "markdown"]


# --- what the build writes -------------------------------------------------------------------

def test_the_default_build_writes_the_student_notebooks_only(tmp_path):
    folder = lesson_folder(tmp_path)
    result = build_command(folder)
    assert result.returncode == 0, result.stderr
    student = (folder / "student" / NAME_1).read_text()
    assert "NotImplementedError" in student and "BEGIN SOLUTION" not in student
    assert sorted(os.listdir(folder)) == [os.path.basename(LESSON_1), "student"]


def test_the_solutions_go_into_the_folder_the_instructor_names(tmp_path):
    folder = lesson_folder(tmp_path)
    result = build(folder, "--solutions", str(tmp_path / "answers"))
    assert result.returncode == 0, result.stderr
    assert "BEGIN SOLUTION" in (tmp_path / "answers" / NAME_1).read_text()
    assert "BEGIN SOLUTION" not in (folder / "student" / NAME_1).read_text()
    assert str(tmp_path / "answers") in result.stdout


def test_the_solutions_cannot_go_into_the_student_folder(tmp_path):
    folder = lesson_folder(tmp_path)
    result = build(folder, "--solutions", str(folder / "student"))
    assert result.returncode == 2
    assert "is the student notebooks' folder" in result.stderr
    assert not (folder / "student").exists()


def test_a_built_notebook_claims_no_paired_text_file(tmp_path):
    """jupytext's ``formats: py:percent`` in a written notebook makes JupyterLab answer HTTP 500."""
    folder = lesson_folder(tmp_path)
    assert build(folder, "--solutions", str(tmp_path / "answers")).returncode == 0
    for path in (folder / "student" / NAME_1, tmp_path / "answers" / NAME_1):
        metadata = json.loads(path.read_text())["metadata"]
        assert "jupytext" not in metadata
        assert metadata["kernelspec"]["name"] == "python3"


def test_one_source_always_builds_the_same_bytes():
    source = open(LESSON_1, encoding="utf-8").read()
    first, second = (nbformat.writes(notebook(student_source(source))) for _ in range(2))
    assert first == second


@pytest.mark.parametrize("path", LESSONS, ids=os.path.basename)
def test_no_solution_leaks_into_the_student_version(path):
    source = open(path, encoding="utf-8").read()
    assert_nothing_leaks(source, path)


def assert_nothing_leaks(source, path="lesson"):
    """No marker and no line of a solution or an answer (12 characters or more) in the student version;
    a solution's comments may repeat the lesson's words and are let be."""
    student = student_source(source, path)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN ANSWER", "END ANSWER"):
        assert marker not in student
    outside = {text for line in student.splitlines() for text in (line.strip(), line.lstrip("# ").strip())}
    lines = source.splitlines()
    for block in marked_blocks(source, path):
        for line in lines[block.first + 1:block.last]:
            if block.kind == "solution" and line.strip().startswith("#"):
                continue
            text = line.lstrip("# ").strip() if block.kind == "answer" else line.strip()
            if len(text) >= 12:
                assert text not in outside, f"{block.label}: {text!r} is in the student version"


# --- questions with answers ------------------------------------------------------------------

def test_an_answer_becomes_an_invitation_in_the_student_notebook_and_shows_in_the_solutions(tmp_path):
    folder = lesson_folder(tmp_path, HEADER + QUESTION + "\n" + EXERCISE)
    result = build(folder, "--solutions", str(tmp_path / "answers"))
    assert result.returncode == 0, result.stderr
    student = "\n".join(markdown_cells(folder / "student" / "01_lesson.ipynb"))
    assert "*Your answer:*" in student
    assert "derivative of x squared" not in student and "ANSWER" not in student.replace("answer:", "")
    solutions = "\n".join(markdown_cells(tmp_path / "answers" / "01_lesson.ipynb"))
    assert "**Answer.**\nBecause the derivative of x squared is two x." in solutions
    assert "BEGIN ANSWER" not in solutions and "END ANSWER" not in solutions
    assert_nothing_leaks(HEADER + QUESTION + "\n" + EXERCISE)


def test_a_student_answer_leaves_an_empty_line_to_write_in():
    student = student_source(HEADER + QUESTION)
    assert "# *Your answer:*\n#\n" in student
    assert solution_source(HEADER + QUESTION).count("# **Answer.**") == 1


# --- strict markers --------------------------------------------------------------------------

NEAR_MISSES = [
    ("code", "    ###BEGIN SOLUTION exercise 1.1: double"),
    ("code", "    ### begin solution exercise 1.1: double"),
    ("code", "    ## BEGIN SOLUTION exercise 1.1: double"),
    ("code", "    #### BEGIN SOLUTION exercise 1.1: double"),
    ("code", "    ### BEGIN SOLUTION exercise 1.1 double"),
    ("code", "    ### BEGIN SOLUTION"),
    ("code", "    ### BEGIN SOLUTON exercise 1.1: double"),
    ("code", "    ### BEGINSOLUTION exercise 1.1: double"),
    ("code", "    ### END SOLUTION exercise 1.1"),
    ("code", "    ### EDN SOLUTION"),
    ("code", "    ### END SOLUITON"),
    ("code", "    ### End Solution"),
    ("markdown", "# ## BEGIN ANSWER question 1.a"),
    ("markdown", "# ### begin answer question 1.a"),
    ("markdown", "# ### BEGIN ANSWER question 1.A"),
    ("markdown", "# ### BEGIN ANSWER 1.a"),
    ("markdown", "# ### BEGIN ANSWER question 1.a, the why"),
    ("markdown", "#### BEGIN ANSWER question 1.a"),
    ("markdown", "# ### END ANSWER."),
    ("markdown", "# ### END ANSWR"),
]


@pytest.mark.parametrize("cell, line", NEAR_MISSES, ids=[line.strip() for _, line in NEAR_MISSES])
def test_a_line_that_reads_like_a_marker_but_is_not_one_is_an_error(tmp_path, cell, line):
    body = "def f(x):\n" + line + "\n    return 2 * x\n" if cell == "code" else "# Why?\n" + line + "\n"
    source = HEADER + f"# %%{' [markdown]' if cell == 'markdown' else ''}\n" + body
    folder = lesson_folder(tmp_path, source)
    result = build(folder)
    assert result.returncode == 2
    number = source.splitlines().index(line) + 1
    assert f"01_lesson.py, line {number}: {line.strip()!r} reads like a marker but is not one" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "student").exists()


@pytest.mark.parametrize("line", ["# The solution is below.", "# and solutions to the exercises", "# End of answer",
                                  "# Endless solutions", "# Send a solution", "# Answer: see the lesson",
                                  "x = 1  # end solution", "# beginning solutions", "# The answer is 4"])
def test_prose_is_not_taken_for_a_marker(line):
    assert not reads_like_a_marker(line)


@pytest.mark.parametrize("source, message", [
    ("x = 1\n    ### BEGIN SOLUTION exercise 1.1: a\n    y = 2\n", r"lesson, line 2: BEGIN SOLUTION never ends"),
    ("### END SOLUTION\n", r"line 1: END SOLUTION without a BEGIN SOLUTION"),
    (HEADER + "# %% [markdown]\n# ### BEGIN ANSWER question 1.a\n# yes\n", r"line 5: BEGIN ANSWER never ends"),
    (HEADER + "# %% [markdown]\n# ### END ANSWER\n", r"line 5: END ANSWER without a BEGIN ANSWER"),
    (HEADER + "# %%\n### BEGIN SOLUTION exercise 1.1: a\n# %%\n### END SOLUTION\n",
     r"line 6: a new cell starts before the solution block of line 5 ends"),
    (HEADER + "# %% [markdown]\n# ### BEGIN ANSWER question 1.a\n# ### BEGIN ANSWER question 1.b\n",
     r"line 6: BEGIN ANSWER inside the answer block of line 5"),
    (HEADER + "# %% [markdown]\n### BEGIN SOLUTION exercise 1.1: a\n", r"line 5: BEGIN SOLUTION in a markdown cell"),
    (HEADER + "# %%\n# ### BEGIN ANSWER question 1.a\n# ### END ANSWER\n", r"line 5: BEGIN ANSWER in a code cell"),
    ("# ---\n# ### BEGIN ANSWER question 1.a\n# ---\n", r"line 2: BEGIN ANSWER in a header cell"),
])
def test_unpaired_and_misplaced_markers_are_named(source, message):
    with pytest.raises(LessonFormatError, match=message):
        student_source(source)


# --- every student notebook compiles ---------------------------------------------------------

@pytest.mark.parametrize("title", ['say "hi"', "a \\ backslash, a 'quote' and \\\"both\\\"", 'ends with \\'])
def test_a_label_with_quotes_or_backslashes_makes_a_cell_that_compiles(tmp_path, title):
    folder = lesson_folder(tmp_path, HEADER + EXERCISE.replace("double", title))
    result = build(folder)
    assert result.returncode == 0, result.stderr
    (cell,) = code_cells(folder / "student" / "01_lesson.ipynb")
    namespace = {}
    exec(compile(cell, "cell", "exec"), namespace)
    with pytest.raises(NotImplementedError) as missing:
        namespace["f"](1)
    assert str(missing.value) == f"exercise 1.1: {title}"


def test_a_cell_that_does_not_compile_stops_the_build_before_anything_is_written(tmp_path):
    folder = lesson_folder(tmp_path, HEADER + EXERCISE + "\n# %%\nprint('fine')\n\n# %%\nif x > :\n    pass\n")
    result = build(folder)
    assert result.returncode == 2
    assert re.search(r"01_lesson\.ipynb, cell 4 \(starting 'if x > :'\) does not compile: invalid syntax on its "
                     r"line 1", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "student").exists()


def test_magics_and_shell_lines_are_not_taken_for_syntax_errors(tmp_path):
    folder = lesson_folder(tmp_path, HEADER + "# %%\n# %time x = 1\nfor i in range(2):\n    # !echo hi\n"
                                              "\n# %%\n# %%timeit\nsum(range(10))\n")
    result = build(folder)
    assert result.returncode == 0, result.stderr
    assert any("%time" in cell for cell in code_cells(folder / "student" / "01_lesson.ipynb"))


@pytest.mark.parametrize("where", ["student", "solutions"])
def test_an_output_folder_that_is_a_file_is_a_one_line_error(tmp_path, where):
    folder = lesson_folder(tmp_path)
    blocker = folder / "student" if where == "student" else tmp_path / "solutions"
    blocker.write_text("not a folder")
    result = build(folder, "--solutions", str(tmp_path / "solutions"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {blocker} exists and is not a folder; move it away or name another folder"
    assert blocker.read_text() == "not a folder"


# --- never overwrite a learner's work --------------------------------------------------------

def test_a_rebuild_keeps_a_changed_notebook_and_refreshes_one_still_as_built(tmp_path):
    folder = lesson_folder(tmp_path)
    (folder / "02_copy.py").write_text(open(LESSON_1, encoding="utf-8").read())
    assert build(folder).returncode == 0
    changed, untouched = folder / "student" / NAME_1, folder / "student" / "02_copy.ipynb"
    work = changed.read_text().replace("raise NotImplementedError('exercise 1.1: mul backward')",
                                       "return gy * b, gy * a")
    assert work != changed.read_text()
    changed.write_text(work)
    lesson = folder / os.path.basename(LESSON_1)
    lesson.write_text(lesson.read_text() + "\n# %%\nprint('a new cell')\n")
    (folder / "02_copy.py").write_text(lesson.read_text())

    result = build(folder)
    assert result.returncode == 0, result.stderr
    assert f"kept {changed}: it has your changes; --force overwrites it" in result.stdout
    assert changed.read_text() == work
    assert "a new cell" in untouched.read_text()

    forced = build(folder, "--force")
    assert forced.returncode == 0 and "kept" not in forced.stdout
    assert "a new cell" in changed.read_text() and "return gy * b, gy * a" not in changed.read_text()


def test_a_notebook_the_build_did_not_write_is_kept(tmp_path):
    folder = lesson_folder(tmp_path)
    (folder / "student").mkdir()
    (folder / "student" / NAME_1).write_text("{}")
    result = build(folder)
    assert result.returncode == 0, result.stderr
    assert f"kept {folder / 'student' / NAME_1}" in result.stdout
    assert (folder / "student" / NAME_1).read_text() == "{}"


def test_an_unchanged_notebook_is_not_even_touched(tmp_path):
    folder = lesson_folder(tmp_path)
    assert build(folder).returncode == 0
    path = folder / "student" / NAME_1
    os.utime(path, (1_000_000, 1_000_000))
    result = build(folder)
    assert result.returncode == 0 and "0 written, 1 up to date" in result.stdout
    assert os.stat(path).st_mtime == 1_000_000


def test_the_record_of_what_was_written_is_json_with_sha256(tmp_path):
    import hashlib
    folder = lesson_folder(tmp_path)
    assert build(folder).returncode == 0
    record = json.loads((folder / "student" / ".course-build.json").read_text())
    digest = hashlib.sha256((folder / "student" / NAME_1).read_bytes()).hexdigest()
    assert record == {"written": {NAME_1: digest}}


def test_an_unreadable_record_keeps_every_existing_notebook(tmp_path):
    folder = lesson_folder(tmp_path)
    assert build(folder).returncode == 0
    (folder / "student" / ".course-build.json").write_text("not json")
    path = folder / "student" / NAME_1
    path.write_text(path.read_text().replace("mul backward", "my notes"))
    result = build(folder)
    assert result.returncode == 0 and f"kept {path}" in result.stdout
    assert "my notes" in path.read_text()


def readme_build_command():
    """The build part of the README's command that opens the course (``... && python -m course build
    && jupyter lab notebooks/student``)."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    (line,) = [line for line in readme.splitlines() if "python -m course build" in line and "jupyter lab" in line]
    (command,) = [part.strip() for part in line.split("&&") if part.strip().startswith("python -m course build")]
    return shlex.split(command)


def test_the_readmes_command_to_open_the_course_is_safe_to_run_twice(tmp_path):
    command = readme_build_command()
    lesson_folder(tmp_path)
    (tmp_path / "lessons").rename(tmp_path / "notebooks")
    run = lambda: subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, cwd=tmp_path, env=ENV)  # noqa: E731
    assert run().returncode == 0
    path = tmp_path / "notebooks" / "student" / NAME_1
    path.write_text(path.read_text().replace("raise NotImplementedError('exercise 1.1: mul backward')",
                                             "return gy * b, gy * a"))
    again = run()
    assert again.returncode == 0, again.stderr        # so the README's `&& jupyter lab` still opens it
    assert "return gy * b, gy * a" in path.read_text()
    assert "kept" in again.stdout
