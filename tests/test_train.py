"""The training loop, resuming, and the train / predict / evaluate commands."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy
import pytest

from googlenet.__main__ import main
from googlenet.errors import UserError, check_device, reports_user_errors
from googlenet.evaluation import evaluate
from googlenet.train import TrainConfig, Trainer
from minigrad import nn
from minigrad.checkpoint import load_checkpoint, save_checkpoint
from minigrad.data import DataError, DataLoader, Dataset, load_digits

TIMING = ("train_seconds", "eval_seconds", "images_per_second")


@pytest.fixture(scope="module")
def digits():
    return load_digits(32).split(0.2, seed=0)


def test_a_short_run_learns(digits, tmp_path):
    """A narrow GoogLeNet on 480 digits: the loss falls and held-out accuracy leaves chance (10%).

    Adam, because it moves every layer's weights at the same pace: with SGD a narrow,
    deep network without batch norm sits at chance for a few hundred steps first. The
    held-out split is measured with a running average of the weights (smoother).
    """
    train, held_out = digits
    data = (train.subset(numpy.arange(480)), held_out.subset(numpy.arange(100)))
    config = TrainConfig(width=0.25, epochs=10, batch_size=16, optimizer="adam", lr=3e-4,
                         weight_decay=0.0, schedule="constant", average=0.95, out=str(tmp_path))
    history = Trainer(config, data=data, progress=False).run()
    first, last = history[0], history[-1]
    assert last["train_loss"] < first["train_loss"] - 1.0
    assert last["val_loss"] < first["val_loss"] - 0.8
    assert last["val_accuracy"] >= 0.5 and last["train_accuracy"] >= 0.5


def tiny_run(digits, out, **options):
    train, held_out = digits
    data = (train.subset(numpy.arange(48)), held_out.subset(numpy.arange(20)))
    settings = dict(width=1 / 16, epochs=2, batch_size=16, augment=True, average=0.9, out=str(out))
    return TrainConfig(**{**settings, **options}), data


def same_history(a, b):
    strip = [{k: v for k, v in row.items() if k not in TIMING} for row in (a, b)]
    return strip[0] == strip[1]


def test_ctrl_c_saves_and_resume_gives_the_same_weights_bit_for_bit(digits, tmp_path):
    config, data = tiny_run(digits, tmp_path / "straight")
    straight = Trainer(config, data=data, progress=False)
    straight_history = straight.run()

    def press_ctrl_c(trainer):          # in epoch 2, after its first step
        if (trainer.epoch, trainer.step) == (1, 1):
            signal.raise_signal(signal.SIGINT)

    config, _ = tiny_run(digits, tmp_path / "interrupted")
    interrupted = Trainer(config, data=data, progress=False)
    interrupted.run(after_step=press_ctrl_c)
    assert interrupted.stop_requested and (interrupted.epoch, interrupted.step) == (1, 1)
    checkpoint = str(tmp_path / "interrupted" / "checkpoint.npz")
    assert int(load_checkpoint(checkpoint)["progress"]["step"]) == 1

    resumed = Trainer(config, data=data, resume=checkpoint, progress=False)
    resumed_history = resumed.run()
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name
    for a, b in zip(straight.average.averages, resumed.average.averages):
        assert a.tobytes() == b.tobytes()
    assert len(resumed_history) == 2 and same_history(straight_history[-1], resumed_history[-1])
    assert same_history(straight_history[0], resumed_history[0])


def test_outputs_are_written_whole(digits, tmp_path):
    config, data = tiny_run(digits, tmp_path, epochs=1, average=None)
    Trainer(config, data=data, progress=False).run()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "curves.png", "metrics.jsonl"]
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [row["epoch"] for row in rows] == [1]
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"} <= rows[0].keys()
    assert open(tmp_path / "curves.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    saved = load_checkpoint(str(tmp_path / "checkpoint.npz"))
    assert saved["config"]["model"]["width"] == 1 / 16 and saved["config"]["data"]["channels"] == 1
    assert int(saved["progress"]["epoch"]) == 1 and int(saved["progress"]["step"]) == 0


# --- the command line -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of a very narrow GoogLeNet on the digits, through the command line."""
    out = tmp_path_factory.mktemp("run")
    status = main(["train", "--epochs", "1", "--width", "0.0625", "--out", str(out), "--no-progress"])
    assert status == 0
    return out


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_train_command_writes_its_outputs(trained):
    assert sorted(os.listdir(trained)) == ["checkpoint.npz", "curves.png", "metrics.jsonl"]


def test_predict_prints_the_top_5(trained, tmp_path, capsys):
    from PIL import Image
    digit = load_digits(8).images[0, 0]                  # a 0, white on black
    Image.fromarray(digit).resize((40, 40)).save(tmp_path / "zero.png")
    assert main(["predict", str(tmp_path / "zero.png"), "--checkpoint",
                 str(trained / "checkpoint.npz")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and "zero.png" in lines[0]
    probabilities = [float(line.split()[-1].rstrip("%")) for line in lines[1:]]   # printed "7.2%"
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 100 for p in probabilities)
    assert sum(probabilities) <= 100 + 5 * 0.005        # five figures, each rounded to 0.01


def held_out_size(share):
    """Images in the digits' held-out split: Dataset.split holds out round(share x class size)
    of each class, here from scikit-learn's own class sizes."""
    from sklearn.datasets import load_digits as sklearn_digits
    return sum(round(share * count) for count in numpy.bincount(sklearn_digits().target))


def test_evaluate_prints_accuracy_and_a_confusion_matrix(trained, capsys):
    assert main(["evaluate", "--checkpoint", str(trained / "checkpoint.npz")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "true \\ predicted" in out
    matrix = [list(map(int, line.split()[2:])) for line in out.splitlines() if line[:3].strip().isdigit()]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == held_out_size(TrainConfig().held_out)
    assert open(trained / "confusion.png", "rb").read(4) == b"\x89PNG"


def test_evaluate_is_the_mean_loss_and_accuracy_in_eval_mode():
    rng = numpy.random.default_rng(0)
    data = Dataset(rng.integers(0, 256, (5, 1, 2, 2), dtype=numpy.uint8), numpy.array([0, 2, 1, 1, 0]),
                   ["a", "b", "c"])
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9, seed=0), nn.Linear(4, 3, rng=rng))   # float32
    loss, accuracy, predictions = evaluate(model.train(), DataLoader(data, batch_size=2))  # batches 2, 2, 1
    x = data.images.reshape(5, 4) / 255.0                 # dropout off: the plain linear layer
    logits = x @ model[2].weight.numpy().T + model[2].bias.numpy()
    log_probabilities = logits - numpy.log(numpy.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-log_probabilities[numpy.arange(5), data.labels].mean(), rel=1e-5)
    numpy.testing.assert_array_equal(predictions, logits.argmax(axis=1))
    assert accuracy == (logits.argmax(axis=1) == data.labels).mean()
    assert model.training and model[1].training            # the mode it had is restored


def test_user_errors_are_one_line_with_exit_status_2(capsys):
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        check_device("tpu")
    assert check_device("cpu") == "cpu"

    @reports_user_errors
    def run(args):
        raise DataError(f"no data in {args}")

    assert run("nowhere") == 2
    assert one_error_line(capsys) == "error: no data in nowhere"


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "cifar10", "--data-path", "{tmp}/nowhere"], "CIFAR-10 folder .* does not exist"),
    (["train", "--data", "folder", "--data-path", "{tmp}/nowhere"], "image folder .* does not exist"),
    (["train", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--image-size", "16"], "GoogLeNet"),
    (["train", "--data", "folder", "--data-path", "{tmp}", "--channels", "2"],
     r"--channels must be 1 \(grey\) or 3 \(colour\), got 2"),
    (["train", "--lr", "nan"], r"^error: --lr must be finite and positive, got nan$"),
    (["train", "--weight-decay", "nan"], r"^error: --weight-decay must be finite and at least 0, got nan$"),
    (["train", "--aux-weight", "nan"], r"^error: --aux-weight must be finite and at least 0, got nan$"),
    (["train", "--aux-weight", "-0.3"], r"^error: --aux-weight must be finite and at least 0, got -0.3$"),
    (["train", "--lr", "inf"], r"^error: --lr must be finite and positive, got inf$"),
    (["train", "--momentum", "1"], r"^error: --momentum must lie in \[0, 1\), got 1.0$"),
    (["train", "--average", "nan"], r"^error: --average must lie in \[0, 1\), got nan$"),
    (["train", "--held-out", "1"], r"^error: --held-out must lie in \(0, 1\), got 1.0$"),
])
def test_train_user_errors_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(out)]
    assert main(argv) == 2
    assert re.search(message, one_error_line(capsys))
    assert not out.exists()


def test_a_resumed_checkpoints_settings_are_checked_too(trained, tmp_path, capsys):
    """Settings read back from a checkpoint go through the same checks as the flags."""
    saved = load_checkpoint(str(trained / "checkpoint.npz"))
    saved["config"]["train"]["lr"] = float("nan")
    forged = str(tmp_path / "forged.npz")
    save_checkpoint(forged, saved["model"], saved["optimizer"], saved["average"], saved["progress"],
                    saved["config"])
    assert main(["train", "--resume", forged, "--out", str(tmp_path / "o")]) == 2
    assert one_error_line(capsys) == "error: --lr must be finite and positive, got nan"


# --- a run whose loss stops being a number ------------------------------------------------
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_diverging_run_stops_naming_the_step_and_keeps_the_last_checkpoint(trained, tmp_path, capsys):
    """Epoch 1 trained well (the fixture); epoch 2 at a learning rate of 1e6 sends the loss to
    NaN: the command stops there, exit status 1, and the files of epoch 1 stay as they were."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = {name: (run / name).read_bytes() for name in ("checkpoint.npz", "metrics.jsonl", "curves.png")}
    status = main(["train", "--resume", str(run / "checkpoint.npz"), "--epochs", "2", "--lr", "1e6",
                   "--out", str(run), "--no-progress"])
    assert status == 1
    error = one_error_line(capsys)
    assert re.match(r"error: the training loss became (nan|inf) at epoch 2, step \d+ of \d+; nothing was "
                    r"saved: .*checkpoint.npz still holds the last good checkpoint", error), error
    assert {name: (run / name).read_bytes() for name in before} == before


def test_weights_that_stop_being_finite_are_never_saved(digits, tmp_path):
    """A finite loss can come with an infinite gradient: the weights are checked before an
    epoch's files are written, and before a Ctrl-C checkpoint."""
    from googlenet.train import TrainingDiverged
    config, data = tiny_run(digits, tmp_path, epochs=1)
    trainer = Trainer(config, data=data, progress=False)

    def spoil_a_weight(trainer):                 # after the epoch's last step
        if trainer.step == len(trainer.train_loader):
            trainer.model.linear.weight.data[0, 0] = numpy.inf

    with pytest.raises(TrainingDiverged, match=r"the weights linear.weight are no longer finite after "
                                               r"epoch 1, step 3; nothing was saved \(no checkpoint had "
                                               r"been written yet\)"):
        trainer.run(after_step=spoil_a_weight)
    assert os.listdir(tmp_path) == []

    trainer = Trainer(config, data=data, progress=False)
    trainer.stop_requested = True                # as after Ctrl-C
    trainer.model.conv1.weight.data[0, 0, 0, 0] = numpy.nan
    with pytest.raises(TrainingDiverged, match="the weights conv1.weight are no longer finite"):
        trainer.run()
    assert os.listdir(tmp_path) == []


# --- class names from any file system -------------------------------------------------------
def test_class_folders_whose_names_are_not_utf8_are_shown_with_replacement_characters(tmp_path, capsys):
    """A folder named with the Latin-1 byte 0xE9 reaches Python as "caf\\udce9"; train, predict
    and evaluate all work, the texts show "caf\ufffd", and the confusion matrix PNG is written."""
    from PIL import Image
    pets = tmp_path / "pets"
    for name in (b"caf\xe9", b"dog"):
        folder = os.path.join(os.fsencode(pets), name)
        try:
            os.makedirs(folder)
        except (OSError, UnicodeError):
            pytest.skip("this file system refuses folder names that are not UTF-8")
        for i in range(5):
            pixels = numpy.full((8, 8, 3), 30 * i + (120 if name == b"dog" else 0), numpy.uint8)
            Image.fromarray(pixels).save(os.fsdecode(os.path.join(folder, b"%d.png" % i)))
    run = tmp_path / "run"
    assert main(["train", "--data", "folder", "--data-path", str(pets), "--epochs", "1", "--width", "0.0625",
                 "--held-out", "0.4", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    checkpoint = str(run / "checkpoint.npz")
    assert main(["evaluate", "--checkpoint", checkpoint]) == 0
    out = capsys.readouterr().out
    assert "caf\ufffd" in out and "\udce9" not in out
    assert (run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["predict", os.fsdecode(os.path.join(os.fsencode(pets), b"dog", b"0.png")),
                 "--checkpoint", checkpoint]) == 0
    out = capsys.readouterr().out
    assert "caf\ufffd" in out and "\udce9" not in out


def test_a_folder_too_small_to_split_is_a_one_line_error(tmp_path, capsys):
    from PIL import Image
    for name in ("cat", "dog"):                  # 2 images a class: 20% of 2 rounds to 0
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(numpy.full((8, 8, 3), 90 * i, numpy.uint8)).save(tmp_path / "pets" / name / f"{i}.png")
    out = tmp_path / "out"
    assert main(["train", "--data", "folder", "--data-path", str(tmp_path / "pets"), "--out", str(out)]) == 2
    assert "pets: holding out 20% of each class (cat 2, dog 2 images) leaves no held-out images" \
        in one_error_line(capsys)
    assert not out.exists()


def test_a_checkpoint_from_another_model_is_named(trained, tmp_path, capsys):
    checkpoint = str(trained / "checkpoint.npz")
    assert main(["train", "--resume", checkpoint, "--width", "0.125", "--out", str(tmp_path / "o")]) == 2
    assert "parameter 'conv1.weight' expected shape (8, 1, 7, 7), got (4, 1, 7, 7)" in one_error_line(capsys)
    foreign = str(tmp_path / "foreign.npz")
    save_checkpoint(foreign, {"weight": numpy.zeros((2, 2), numpy.float32)})
    assert main(["evaluate", "--checkpoint", foreign]) == 2
    assert "not a GoogLeNet training checkpoint" in one_error_line(capsys)


def test_predict_user_errors(trained, tmp_path, capsys):
    checkpoint = str(trained / "checkpoint.npz")
    (tmp_path / "text.png").write_text("not an image")
    for argv, message in [([str(tmp_path / "text.png")], "not an image Pillow can read"),
                          ([str(tmp_path / "none.png")], "does not exist"),
                          ([str(tmp_path / "text.png"), "--device", "cuda:x"], "unknown device")]:
        assert main(["predict", *argv, "--checkpoint", checkpoint]) == 2
        assert message in one_error_line(capsys)
    assert main(["predict", str(tmp_path / "text.png"), "--checkpoint", str(tmp_path / "no.npz")]) == 2
    assert "does not exist" in one_error_line(capsys)


def test_python_dash_m_exits_non_zero_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "googlenet", "train", "--data", "cifar10",
                             "--data-path", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 2
    assert result.stderr.startswith("error: CIFAR-10 folder") and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
