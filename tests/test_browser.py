"""A learner's first exercise in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright opens JupyterLab on the student notebook of lesson 1, runs it, answers exercise 1.1,
saves, and builds the course again: the answer must survive the rebuild.

Playwright drives the system's Chromium (``executable_path``); it never downloads a browser.
On a failure the page's screenshot is left in the test's temporary folder.
"""
import json
import os
import re
import shutil
import time

from live_jupyter import build_course, import_or_skip, run_build, served, skip_or_fail

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    skip_or_fail("no Chromium at /usr/bin/chromium (apt-get install chromium)")
sync_api = import_or_skip("playwright.sync_api", "Playwright is not installed (pip install -e \".[browser]\")")
import_or_skip("jupyterlab", "JupyterLab is not installed (the notebooks extra)")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = "01_autograd.ipynb"
MISSING = "raise NotImplementedError('exercise 1.1: mul backward')"
ANSWER = "return gy * b, gy * a"
# Every cell in the page (no windowing), so that outputs far down the notebook can be found.
# The kernel starts without asking (JupyterLab asks by default, as it would a learner).
SETTINGS = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
SECONDS = 1000      # Playwright counts milliseconds


def wait_for_idle_kernel(server, timeout=120):
    """Wait until the notebook's kernel exists and is idle, as the server sees it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, sessions = server.get("/api/sessions")
        if status == 200 and any(session["path"].endswith(NOTEBOOK) and session["kernel"]["execution_state"] == "idle"
                                 for session in sessions):
            return
        time.sleep(0.25)
    raise TimeoutError(f"no idle kernel for {NOTEBOOK} after {timeout} s: {server.get('/api/sessions')}")


def saved_source(path):
    """The source of exercise 1.1's cell in the notebook file on disk."""
    with open(path, encoding="utf-8") as file:
        cells = json.load(file)["cells"]
    return next("".join(cell["source"]) for cell in cells if "def mul_backward" in "".join(cell["source"]))


def wait_for_the_save(path, timeout=30):
    """Exercise 1.1's cell on disk once it holds the answer. Jupyter writes a notebook in place
    (keeping a backup aside), so a read during the write can find half a file: read again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            source = saved_source(path)
        except ValueError:              # half-written JSON
            source = ""
        if ANSWER in source or time.monotonic() > deadline:
            return source
        time.sleep(0.2)


def answer_exercise_1_1(page, cell):
    """Type the answer over the raise line of exercise 1.1's ``cell``, keeping its indentation."""
    cell.locator(".cm-line", has_text=MISSING).click()
    page.keyboard.press("End")
    for _ in MISSING:
        page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.type(ANSWER)
    assert ANSWER in cell.locator(".cm-content").inner_text()


def test_a_learner_answers_exercise_1_1_in_jupyterlab_and_a_rebuild_keeps_it(tmp_path):
    course = tmp_path / "course"
    build_course(course, lessons=["01_"])
    notebook_path = course / "student" / NOTEBOOK
    with served(str(course / "student"), str(tmp_path / "jupyter"), app="jupyterlab", settings=SETTINGS) as server, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        page.set_default_timeout(60 * SECONDS)
        try:
            page.goto(f"{server.url}/lab/tree/{NOTEBOOK}?token={server.token}")
            exercise_cell = page.locator(".jp-CodeCell", has_text="def mul_backward")
            exercise_cell.or_(page.locator(".jp-Dialog")).first.wait_for()
            assert not page.locator(".jp-Dialog").count(), \
                f"JupyterLab could not open {NOTEBOOK}: {page.locator('.jp-Dialog').inner_text()}"
            wait_for_idle_kernel(server)

            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            page.get_by_text("[TODO] exercise 1.1").wait_for(timeout=120 * SECONDS)
            wait_for_idle_kernel(server)

            answer_exercise_1_1(page, exercise_cell)
            page.keyboard.press("Control+Enter")
            exercise_cell.get_by_text("[OK] exercise 1.1").wait_for(timeout=60 * SECONDS)
            wait_for_idle_kernel(server)

            page.keyboard.press("Control+s")
            assert f"    {ANSWER}" in wait_for_the_save(notebook_path), "the save did not reach the disk"
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    rebuild = run_build(course)
    assert f"kept {notebook_path}: it has your changes" in rebuild.stdout, rebuild.stdout
    assert f"    {ANSWER}" in saved_source(notebook_path)
    assert MISSING not in saved_source(notebook_path)
