"""``minigrad.bench.without_avx512`` and ``bench --without-avx512``: a process started with its
variables runs none of NumPy's AVX-512 loops (and says so in the machine line), PyTorch runs
its AVX2 code, and the command runs itself again held, never twice. The libraries read the
variables when they load, so each case runs in a fresh process."""
import os
import subprocess
import sys

import pytest

from googlenet import bench as googlenet_bench
from googlenet.__main__ import main as googlenet_main
from minigrad.bench import machine, without_avx512
from minigrad.bench.memory import child_environment


def run_held(code):
    """The words ``python -c CODE`` prints, run with every library held to AVX2."""
    environment = child_environment(dict(os.environ, **without_avx512.variables()))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=environment).stdout.split()


def test_only_numpys_avx512_targets_are_left_out():
    assert without_avx512.is_beyond_avx2("AVX512_SKX") and without_avx512.is_beyond_avx2("X86_V4")
    assert not without_avx512.is_beyond_avx2("AVX2") and not without_avx512.is_beyond_avx2("X86_V3")
    variables = without_avx512.variables()
    left_out = variables["NPY_DISABLE_CPU_FEATURES"].split()
    assert all("AVX512" in f or f == "X86_V4" for f in left_out) and "X86_V3" not in left_out
    assert set(left_out) == {f for f in without_avx512.NUMPY_TARGETS if "AVX512" in f or f == "X86_V4"}
    assert variables["OPENBLAS_CORETYPE"] == "Haswell" and variables["ATEN_CPU_CAPABILITY"] == "avx2"
    assert variables["ONEDNN_MAX_CPU_ISA"] == "AVX2" and variables["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"


def test_a_held_process_runs_no_avx512_numpy_loop_and_its_machine_line_says_so():
    code = ("from minigrad.bench import machine, without_avx512 as w; "
            "print(w.numpy_runs_avx512(), w.held_here()); print(machine.machine_line())")
    runs_avx512, held, *line = run_held(code)
    assert (runs_avx512, held) == ("False", "True")
    if machine.machine()["avx512"]:
        assert "HELD TO AVX2" in " ".join(line)
    assert not without_avx512.held_here() and "HELD" not in machine.machine_line()


def test_a_held_process_names_what_it_holds():
    words = " ".join(run_held("from minigrad.bench import without_avx512 as w; print(w.words())"))
    assert "NumPy's AVX-512 loops left out" in words and "OpenBLAS Haswell kernels" in words
    assert "PyTorch avx2" in words and "oneDNN AVX2" in words
    assert without_avx512.words() == ""


def test_a_held_pytorch_runs_its_avx2_code():
    pytest.importorskip("torch")
    assert run_held("import torch; print(torch.backends.cpu.get_cpu_capability())") == ["AVX2"]


def test_rerun_held_passes_the_variables_and_returns_the_childs_exit_status(capsys):
    check = "import os, sys; sys.exit(0 if os.environ['ONEDNN_MAX_CPU_ISA'] == 'AVX2' else 3)"
    assert without_avx512.rerun_held(["-c", check]) == 0
    assert without_avx512.rerun_held(["-c", "import sys; sys.exit(5)"]) == 5
    assert "NPY_DISABLE_CPU_FEATURES=" in capsys.readouterr().out


def test_the_command_runs_itself_again_held_with_the_same_options(monkeypatch):
    monkeypatch.setattr(machine, "cpu_model_and_flags", lambda: ("a CPU", {"avx2", "avx512f"}))
    asked = []
    monkeypatch.setattr(without_avx512, "rerun_held", lambda arguments: asked.append(arguments) or 7)
    argv = ["bench", "--model", "1x32", "--quick", "--no-torch", "--without-avx512"]
    assert googlenet_main(argv) == 7
    assert asked == [["-m", "googlenet", *argv]]


def test_the_held_command_runs_in_place(monkeypatch):
    monkeypatch.setattr(machine, "cpu_model_and_flags", lambda: ("a CPU", {"avx2", "avx512f"}))
    monkeypatch.setenv(without_avx512.MARK, "1")
    monkeypatch.setattr(without_avx512, "rerun_held", lambda arguments: pytest.fail("ran itself again"))
    ran = []
    monkeypatch.setattr(googlenet_bench, "run_one_device", lambda args, shapes: ran.append(args.without_avx512))
    assert googlenet_main(["bench", "--quick", "--only", "3a/pool_proj", "--without-avx512"]) == 0
    assert ran == [True]


@pytest.mark.parametrize("flags, argv, message", [
    ({"avx2"}, ["--model", "--without-avx512"], "this CPU has no AVX-512"),
    ({"avx512f"}, ["--model", "--device", "cuda", "--without-avx512"], "it takes --device cpu, not cuda"),
    ({"avx512f"}, ["--compare", "--without-avx512"], "--without-avx512: not an option of --compare"),
])
def test_where_nothing_can_be_held_it_is_a_one_line_error(flags, argv, message, monkeypatch, capsys):
    monkeypatch.setattr(machine, "cpu_model_and_flags", lambda: ("a CPU", flags))
    monkeypatch.setattr(googlenet_bench, "usable_device", lambda name: name or "cpu")
    try:
        status = googlenet_main(["bench", *argv])
    except SystemExit as exit:
        status = exit.code
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("error: ") and message in err and "\n" not in err
