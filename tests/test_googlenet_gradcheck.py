"""The whole-network gradient check, that it catches a wrong backward, and what the
auxiliary heads add to the gradient of the lower layers."""
import numpy
import pytest

from minigrad import functional as F
from minigrad.gradcheck import GradcheckError
from googlenet.__main__ import main
from googlenet.gradcheck import auxiliary_gradients, checkable_problem, gradcheck_googlenet
from googlenet.model import googlenet_loss


@pytest.fixture(scope="module")
def report():
    return gradcheck_googlenet()


def test_whole_network_gradients_match_finite_differences(report):
    assert report.passed
    assert report.directional.rel_error < 1e-6
    assert report.max_rel_error < 1e-6
    # 3 stem convolutions + 9 x 6 Inception convolutions + linear + 2 x 3 auxiliary layers, and x
    assert len(report.layers) == 3 + 54 + 1 + 6 + 1
    assert report.layers[-1].layer == "input"
    names = [e.layer for e in report.layers]
    assert "inception5b.branch_pool.proj" in names and "aux2.classifier" in names and "conv2_reduce" in names


def test_every_layer_gets_a_meaningful_check(report):
    """Each layer's sample includes a non-zero gradient: no check is vacuous."""
    for e in report.layers:
        assert e.checked >= 3 and e.analytic != 0, e.layer


def test_report_prints_every_layer(report):
    text = str(report)
    assert "PASSED" in text and "directional derivative" in text
    assert text.count("\n") >= len(report.layers) + 4


def test_a_wrong_backward_is_caught(monkeypatch):
    """An LRN backward 1% too large, in two layers of a 60-layer network, is found."""
    lrn = F.local_response_norm.op
    right = lrn.backward
    monkeypatch.setattr(lrn, "backward", lambda gy, cache: (right(gy, cache)[0] * 1.01,))
    with pytest.raises(GradcheckError, match="whole-network gradient check failed") as failure:
        gradcheck_googlenet(width=1 / 16, elements=1)
    failing = [line.split()[0] for line in str(failure.value).splitlines() if "<-- FAIL" in line]
    assert "conv1" in failing and "conv2_reduce" in failing     # below the LRNs
    assert "linear" not in failing and "inception3a.branch1x1.conv" not in failing


# --- auxiliary heads ----------------------------------------------------------------------------
BELOW_AUX = ["conv1", "conv2", "3a", "3b", "4a", "4b", "4c", "4d"]
ABOVE_AUX = ["4e", "5a", "5b", "linear"]


def test_aux_heads_add_gradient_below_4d_in_training_mode():
    model, x, labels = checkable_problem(batch_size=4)
    norms = {row: (main, added) for row, main, added in auxiliary_gradients(model, x, labels)}
    for row in BELOW_AUX:
        main, added = norms[row]
        assert added > 1e-2 * main > 0, row
    for row in ABOVE_AUX:
        assert norms[row][1] == 0.0, row
    for head in ("aux1", "aux2"):
        main, added = norms[head]
        assert main == 0.0 and added > 0, head


def test_aux_heads_add_nothing_in_eval_mode():
    model, x, labels = checkable_problem(batch_size=4)
    model.eval()
    for row, main, added in auxiliary_gradients(model, x, labels):
        assert added == 0.0, row
    model.zero_grad()
    googlenet_loss(model(x), labels).backward()
    assert all(p.grad is None for name, p in model.named_parameters() if name.startswith("aux"))
    assert numpy.abs(model.conv1.weight.grad).max() > 0


def test_command_line_gradcheck(capsys):
    assert main(["gradcheck", "--width", "0.0625", "--elements", "1"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "inception4e.branch5x5.conv" in out and "aux added" in out


@pytest.mark.parametrize("argv, message", [
    (["--elements", "0"], "error: --elements must be at least 1, got 0"),
    (["--elements", "-2"], "error: --elements must be at least 1, got -2"),
    (["--width", "inf"], "error: --width must be finite and positive, got inf"),
])
def test_command_line_refuses_a_check_of_nothing_and_an_infinite_width(argv, message, capsys):
    assert main(["gradcheck", *argv]) == 2
    assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("elements", [0, -1, 2.5, True])
def test_checking_no_elements_is_refused_not_passed(elements):
    with pytest.raises(ValueError, match=r"gradcheck_googlenet: elements must be an int of at least 1"):
        gradcheck_googlenet(elements=elements)
