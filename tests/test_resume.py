"""Stopping and resuming a run, attacked: changed batching or data, damaged checkpoints and
metrics, bad output folders. Every run ends; every mistake is one line naming the file,
exit status 2, found before any slow work (the data is not loaded, no folder is made)."""
import json
import re

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from googlenet.__main__ import main
from googlenet.train import TrainConfig, Trainer
from minigrad.checkpoint import load_checkpoint, save_checkpoint
from minigrad.data import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits(32).split(0.2, seed=0)


def tiny(digits, out, images=12, **options):
    train, held_out = digits
    data = (train.subset(numpy.arange(images)), held_out.subset(numpy.arange(4)))
    settings = dict(width=1 / 16, epochs=2, batch_size=4, average=0.9, out=str(out))
    return TrainConfig(**{**settings, **options}), data


def stop_at(step_count):
    """An after_step that stops the run after ``step_count`` steps in all."""
    def after_step(trainer):
        after_step.steps += 1
        if after_step.steps == step_count:
            trainer.stop_requested = True
    after_step.steps = 0
    return after_step


def run_bounded(trainer, bound):
    """Run ``trainer`` to its end; fail (instead of spinning) past ``bound`` steps or past
    one epoch pass more than it has epochs (a pass that yields no batch takes no step)."""
    def guard(trainer):
        guard.steps += 1
        assert guard.steps <= bound, f"still running after {bound} steps"
    guard.steps = 0
    train_epoch, passes = trainer.train_epoch, []

    def counted_train_epoch(*args):
        passes.append(trainer.epoch)
        assert len(passes) <= trainer.config.epochs + 1, f"epoch passes {passes} without an end"
        return train_epoch(*args)

    trainer.train_epoch = counted_train_epoch
    return trainer.run(after_step=guard)


def weights(trainer):
    return [p.numpy().tobytes() for p in trainer.model.parameters()]


def test_resume_with_a_larger_batch_after_a_late_stop_restarts_the_epoch(digits, tmp_path, capsys):
    # the case: stopped at step 4 of 6 (batch 1 on 6 images), resumed with batch 3 (2 steps)
    config, data = tiny(digits, tmp_path, images=6, batch_size=1, epochs=1)
    Trainer(config, data=data, progress=False).run(after_step=stop_at(4))
    checkpoint = str(tmp_path / "checkpoint.npz")
    config, data = tiny(digits, tmp_path, images=6, batch_size=3, epochs=1)
    resumed = Trainer(config, data=data, resume=checkpoint, progress=False)
    history = run_bounded(resumed, bound=2)
    assert [row["epoch"] for row in history] == [1]
    assert "epoch 1 starts again from its first batch" in capsys.readouterr().err


def test_resume_after_the_image_folder_lost_files_restarts_the_epoch(digits, tmp_path, capsys):
    config, data = tiny(digits, tmp_path, images=16, epochs=1)      # 4 steps an epoch
    Trainer(config, data=data, progress=False).run(after_step=stop_at(3))
    config, data = tiny(digits, tmp_path, images=8, epochs=1)       # now 2: step 3 is past the end
    history = run_bounded(Trainer(config, data=data, resume=str(tmp_path / "checkpoint.npz"),
                                  progress=False), bound=2)
    assert history[-1]["epoch"] == 1
    assert "stopped at step 3 of epoch 1, but the batch size or the training data changed" \
        in capsys.readouterr().err


@settings(max_examples=20, deadline=None)
@given(images=st.integers(2, 9), batch=st.integers(1, 3), epochs=st.integers(1, 2),
       stop=st.integers(1, 6), new_images=st.integers(2, 9), new_batch=st.integers(1, 6),
       new_epochs=st.integers(1, 3))
def test_every_stop_and_changed_resume_ends(digits, tmp_path_factory, images, batch, epochs, stop,
                                            new_images, new_batch, new_epochs):
    out = tmp_path_factory.mktemp("run")
    config, data = tiny(digits, out, images=images, batch_size=batch, epochs=epochs)
    Trainer(config, data=data, progress=False).run(after_step=stop_at(stop))
    config, data = tiny(digits, out, images=new_images, batch_size=new_batch, epochs=new_epochs)
    steps_per_epoch = -(-new_images // new_batch)
    trainer = Trainer(config, data=data, resume=str(out / "checkpoint.npz"), progress=False)
    history = run_bounded(trainer, bound=new_epochs * steps_per_epoch)
    assert trainer.epoch >= new_epochs         # (a run already past its new end just stops)
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))


@settings(max_examples=4, deadline=None)
@given(stop=st.integers(1, 5))
def test_resume_with_unchanged_settings_is_bit_exact(digits, tmp_path_factory, stop):
    config, data = tiny(digits, tmp_path_factory.mktemp("straight"), epochs=2)
    straight = Trainer(config, data=data, progress=False)
    straight.run()
    out = tmp_path_factory.mktemp("stopped")
    config, data = tiny(digits, out, epochs=2)
    Trainer(config, data=data, progress=False).run(after_step=stop_at(stop))
    resumed = Trainer(config, data=data, resume=str(out / "checkpoint.npz"), progress=False)
    run_bounded(resumed, bound=6)
    assert weights(resumed) == weights(straight)


# --- the command line: one line, exit status 2, nothing written -------------------------------
@pytest.fixture(scope="module")
def saved_run(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved")
    config, data = tiny(digits, out, epochs=1)
    Trainer(config, data=data, progress=False).run()
    return out


def error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def resave(source, target, config=None, drop=()):
    """``source``'s checkpoint written to ``target`` with another config or progress entries dropped."""
    saved = load_checkpoint(str(source / "checkpoint.npz"))
    progress = {k: v for k, v in saved["progress"].items() if k not in drop}
    save_checkpoint(str(target), saved["model"], saved["optimizer"], saved["average"], progress,
                    saved["config"] if config is None else config)
    return str(target)


def test_a_checkpoint_without_progress_epoch_is_named(saved_run, tmp_path, capsys):
    damaged = resave(saved_run, tmp_path / "c.npz", drop=("epoch",))
    assert main(["train", "--resume", damaged, "--out", str(tmp_path / "o")]) == 2
    assert re.search(r"c\.npz: progress/epoch is missing", error_line(capsys))
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_whose_config_is_a_list_is_named(saved_run, tmp_path, capsys):
    damaged = resave(saved_run, tmp_path / "c.npz", config=[1, 2])
    for argv in (["train", "--resume", damaged, "--out", str(tmp_path / "o")],
                 ["evaluate", "--checkpoint", damaged]):
        assert main(argv) == 2
        assert "c.npz: the config entry is not a JSON object but list" in error_line(capsys)


def test_a_truncated_metrics_file_is_named_on_resume(saved_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    checkpoint = resave(saved_run, run / "checkpoint.npz")
    text = (saved_run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text[:len(text) // 2])
    assert main(["train", "--resume", checkpoint, "--epochs", "2", "--out", str(run)]) == 2
    assert re.search(r"metrics\.jsonl, line 1: not JSON", error_line(capsys))
    (run / "metrics.jsonl").write_text(json.dumps([1, 2]) + "\n")
    assert main(["train", "--resume", checkpoint, "--epochs", "2", "--out", str(run)]) == 2
    assert re.search(r"metrics\.jsonl, line 1: expected an object with epoch", error_line(capsys))


@pytest.mark.parametrize("where, message", [
    ("file", r"--out .*: is a file, not a folder"),
    ("under a file", r"--out .*: .* is a file, so no folder can be made there"),
])
def test_an_output_folder_that_cannot_be_written_is_named_before_the_data_loads(
        tmp_path, capsys, monkeypatch, where, message):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" if where == "file" else tmp_path / "file" / "run"
    monkeypatch.setattr("googlenet.train.load_dataset", lambda *a: pytest.fail("the data was loaded"))
    assert main(["train", "--out", str(out)]) == 2
    assert re.search(message, error_line(capsys))


def test_cifar10_at_another_image_size_is_refused_before_anything_is_made(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("googlenet.train.load_dataset", lambda *a: pytest.fail("the data was loaded"))
    out = tmp_path / "o"
    assert main(["train", "--data", "cifar10", "--data-path", str(tmp_path), "--image-size", "64",
                 "--out", str(out)]) == 2
    assert "--image-size 64: CIFAR-10's images are 32x32" in error_line(capsys)
    assert not out.exists()


# --- fuzzing the metrics reader ----------------------------------------------------------------
VALID_ROW = json.dumps(dict(epoch=1, train_loss=2.3, train_main_loss=2.2, val_loss=2.1,
                            train_accuracy=0.1, val_accuracy=0.12, lr=0.01)) + "\n"


def mutations():
    """Bytes that were a valid metrics.jsonl: truncated, bit-flipped, spliced with junk."""
    valid = (VALID_ROW * 3).encode()
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    flipped = st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 7)).map(
        lambda f: valid[:f[0]] + bytes([valid[f[0]] ^ (1 << f[1])]) + valid[f[0] + 1:])
    spliced = st.tuples(st.integers(0, len(valid)), st.binary(max_size=40)).map(
        lambda s: valid[:s[0]] + s[1] + valid[s[0]:])
    nested = st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth + b"\n")
    return st.one_of(cut, flipped, spliced, nested, st.binary(max_size=200))


@settings(max_examples=150, deadline=None)
@given(content=mutations())
def test_the_metrics_reader_only_ever_raises_a_user_error(tmp_path_factory, content):
    from googlenet.errors import UserError
    from googlenet.run_files import read_metrics
    path = tmp_path_factory.mktemp("m") / "metrics.jsonl"
    path.write_bytes(content)
    try:
        rows = read_metrics(str(path))
    except UserError as error:
        assert str(path) in str(error)
    else:
        assert all(isinstance(row, dict) and isinstance(row["epoch"], int) for row in rows)
