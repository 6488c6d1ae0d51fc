"""A real Jupyter server for the tests: build the course, serve it, talk to it over HTTP.

``served(root, app)`` starts ``python -m jupyterlab`` or ``python -m jupyter_server`` on a free
loopback port with a random token, in its own process group and with its own Jupyter folders
(so the user's settings play no part), waits until ``/api/status`` answers, and always stops the
server and its kernels afterwards. jupytext's server extension loads as it does for a learner:
that extension is what refused the notebooks with HTTP 500 when they claimed a paired .py file.
"""
import contextlib
import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
STARTUP_SECONDS = 90


def import_or_skip(module, reason):
    """``module`` imported; else the calling test module is skipped with ``reason``, or fails where
    CI=true: CI installs everything these tests need, so there a skip would hide a broken install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        skip_or_fail(reason)


def skip_or_fail(reason):
    import pytest
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def build_course(folder, lessons=None, options=()):
    """Copy the lesson sources (all, or those whose name starts with one of ``lessons``) into
    ``folder`` and run ``python -m course build --notebooks folder *options``; its result."""
    os.makedirs(folder, exist_ok=True)
    for name in sorted(os.listdir(NOTEBOOKS)):
        if name.endswith(".py") and (lessons is None or name.startswith(tuple(lessons))):
            shutil.copy(os.path.join(NOTEBOOKS, name), folder)
    return run_build(folder, options)


def run_build(folder, options=()):
    """``python -m course build --notebooks folder *options``, which must succeed; its result."""
    result = subprocess.run([sys.executable, "-m", "course", "build", "--notebooks", str(folder), *options],
                            capture_output=True, text=True, cwd=ROOT, env=course_env())
    assert result.returncode == 0, result.stderr
    return result


def course_env(jupyter_home=None):
    """The environment for the build, the server and its kernels: this checkout's packages first,
    lessons in their fast mode, no display; with ``jupyter_home``, private Jupyter folders."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               MINIGRAD_FAST="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    if jupyter_home:
        for variable, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                              ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            env[variable] = os.path.join(jupyter_home, sub)
            os.makedirs(env[variable], exist_ok=True)
    return env


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running Jupyter server: its URL, token and log; ``get``/``post``/``delete`` its REST API."""

    def __init__(self, process, port, token, log_path):
        self.process, self.port, self.token, self.log_path = process, port, token, log_path
        self.url = f"http://127.0.0.1:{port}"

    def request(self, method, path, body=None):
        """(HTTP status, decoded JSON or None) of one API call."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def delete(self, path):
        return self.request("DELETE", path)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as file:
            return file.read()


def wait_until_up(server):
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the Jupyter server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if server.get("/api/status")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the Jupyter server did not answer in {STARTUP_SECONDS} s:\n{server.log()}")


def stop(server):
    """Shut the kernels down through the API, then the server (SIGTERM, then SIGKILL to its group)."""
    if server.process.poll() is None:
        with contextlib.suppress(OSError):
            status, kernels = server.get("/api/kernels")
            for kernel in kernels if status == 200 else []:
                server.delete(f"/api/kernels/{kernel['id']}")
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)      # kernels left behind in its group
    server.process.wait(timeout=20)


@contextlib.contextmanager
def served(root, home, app="jupyter_server", settings=None):
    """A Jupyter server (``app``: "jupyter_server" or "jupyterlab") serving ``root``, with its
    Jupyter folders under ``home``; ``settings`` are JupyterLab user settings,
    {"@jupyterlab/notebook-extension/tracker": {...}}."""
    env = course_env(home)
    for plugin, values in (settings or {}).items():
        path = os.path.join(env["JUPYTER_CONFIG_DIR"], "lab", "user-settings", plugin + ".jupyterlab-settings")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            json.dump(values, file)
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", "--allow-root", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}"]
    if app == "jupyterlab":
        command += ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log_path = os.path.join(home, f"{app}.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=root, start_new_session=True)
    server = Server(process, port, token, log_path)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop(server)


def decode_message(frame):
    """A Jupyter message from one websocket frame: JSON text, or (for a message carrying binary
    buffers, e.g. a widget's image) jupyter_server's binary form: a big-endian uint32 count n,
    n uint32 offsets, then the JSON message and the buffers at those offsets."""
    if isinstance(frame, str):
        return json.loads(frame)
    (count,) = struct.unpack_from("!I", frame, 0)
    offsets = struct.unpack_from(f"!{count}I", frame, 4)
    end = offsets[1] if count > 1 else len(frame)
    return json.loads(frame[offsets[0]:end].decode("utf-8"))


class KernelChannel:
    """A kernel of ``server`` driven as JupyterLab drives it: Jupyter messages (protocol 5) over the
    server's websocket ``/api/kernels/ID/channels``."""

    def __init__(self, server, kernel_id):
        import websocket                    # websocket-client, a dependency of jupyter_server
        self.session = uuid.uuid4().hex
        self.socket = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={self.session}",
            header=[f"Authorization: token {server.token}"], timeout=30)

    def execute(self, code, timeout=300):
        """Run ``code``; (its stream text, its errors as [(ename, evalue)]) once the kernel is idle."""
        msg_id = uuid.uuid4().hex
        self.socket.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": "test", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": False}}))
        text, errors = [], []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.socket.settimeout(max(1.0, deadline - time.monotonic()))
            message = decode_message(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id or message["channel"] != "iopub":
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                text.append(content["text"])
            elif kind == "error":
                errors.append((content["ename"], content["evalue"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(text), errors
        raise TimeoutError(f"the kernel did not finish in {timeout} s: {code[:80]!r}")

    def close(self):
        self.socket.close()
