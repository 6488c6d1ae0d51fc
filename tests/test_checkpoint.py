"""Checkpoint files: bit-exact round trip, no pickles, atomic replacement, clear errors."""
import io
import os
import tracemalloc
import zipfile

import numpy
import numpy.lib.format as npy
import pytest

from minigrad import checkpoint, nn
from minigrad.checkpoint import (CheckpointError, atomic_path, load_checkpoint, load_weights,
                                 save_checkpoint)
from minigrad.optim import SGD


def small_model(hidden=5, seed=0):
    rng = numpy.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, hidden, rng=rng), nn.ReLU(), nn.Linear(hidden, 3, rng=rng))


def test_round_trip_is_bit_exact(tmp_path):
    model = small_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():                  # one step, so the velocity is not zero
        p.grad = numpy.random.default_rng(1).standard_normal(p.shape).astype(p.dtype)
    optimizer.step()
    config = {"model": {"width": 0.25}, "classes": ["zéro", "un"], "lr": 0.1}
    progress = {"epoch": numpy.array(3), "loss_sum": numpy.array(1.25, dtype=numpy.float64)}
    path = str(tmp_path / "run.npz")
    save_checkpoint(path, model.state_dict(), optimizer.state_dict(), progress=progress, config=config)
    loaded = load_checkpoint(path)
    assert loaded["config"] == config
    for section, original in (("model", model.state_dict()), ("optimizer", optimizer.state_dict()),
                              ("progress", progress)):
        assert loaded[section].keys() == original.keys()
        for key, value in original.items():
            assert loaded[section][key].dtype == value.dtype
            assert loaded[section][key].tobytes() == value.tobytes()
    again = small_model(seed=7)
    load_weights(again, loaded["model"])
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name


def test_the_file_holds_no_pickles(tmp_path):
    """An .npz is a zip of .npy files; each header's dtype says whether a pickle follows."""
    path = str(tmp_path / "run.npz")
    save_checkpoint(path, small_model().state_dict(), config={"a": 1})
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names and all(name.endswith(".npy") for name in names)
        for name in names:
            with archive.open(name) as member:
                read_header = {(1, 0): npy.read_array_header_1_0,
                               (2, 0): npy.read_array_header_2_0}[npy.read_magic(member)]
                _, _, dtype = read_header(member)
                assert not dtype.hasobject, name


def test_a_crash_while_writing_keeps_the_old_checkpoint(tmp_path):
    path = str(tmp_path / "run.npz")
    save_checkpoint(path, small_model().state_dict(), config={"good": True})
    before = open(path, "rb").read()
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as file:
                file.write(b"half a checkpoint")
            raise KeyboardInterrupt          # Ctrl-C or a crash in the middle of writing
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["run.npz"]      # no temporary file left behind
    assert load_checkpoint(path)["config"] == {"good": True}


def test_a_model_of_another_shape_is_named_with_both_shapes(tmp_path):
    path = str(tmp_path / "run.npz")
    save_checkpoint(path, small_model(hidden=5).state_dict())
    state = load_checkpoint(path)["model"]
    with pytest.raises(CheckpointError, match=r"parameter '0.weight' expected shape \(8, 4\), got \(5, 4\)"):
        load_weights(small_model(hidden=8), state)
    del state["2.bias"]
    with pytest.raises(CheckpointError, match=r"no parameter '2.bias' \(expected shape \(3,\)\)"):
        load_weights(small_model(), state)
    state["2.bias"], state["3.weight"] = numpy.zeros(3, numpy.float32), numpy.zeros((2, 2))
    with pytest.raises(CheckpointError, match=r"parameters this model lacks, e.g. '3.weight'"):
        load_weights(small_model(), state)


def test_unreadable_files_say_so(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(str(tmp_path / "missing.npz"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="junk.npz: not a readable .npz checkpoint"):
        load_checkpoint(str(junk))
    other = str(tmp_path / "other.npz")
    numpy.savez(other, weights=numpy.zeros(3))
    with pytest.raises(CheckpointError, match="other.npz: not a minigrad checkpoint"):
        load_checkpoint(other)
    truncated = tmp_path / "truncated.npz"
    save_checkpoint(str(truncated), small_model().state_dict())
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.npz: not a readable .npz checkpoint"):
        load_checkpoint(str(truncated))


# NumPy 2's variable-width strings: no Python objects, yet numpy.savez pickles them
STRING_DTYPE = getattr(getattr(numpy, "dtypes", None), "StringDType", None)


@pytest.mark.parametrize("value", [
    pytest.param(None, id="None"),                          # numpy.asarray(None): an object array
    pytest.param({"epoch": 3}, id="dict"),                  # likewise
    pytest.param([[1, 2], [3]], id="ragged"),               # NumPy refuses to make an array of it
    pytest.param(STRING_DTYPE and numpy.array(["text"], dtype=STRING_DTYPE()), id="StringDType",
                 marks=pytest.mark.skipif(STRING_DTYPE is None, reason="StringDType is new in NumPy 2")),
])
def test_a_value_only_a_pickle_could_hold_is_refused_before_writing(tmp_path, monkeypatch, value):
    path = str(tmp_path / "run.npz")
    save_checkpoint(path, small_model().state_dict(), config={"good": True})
    before = open(path, "rb").read()

    def no_writing(path):
        raise AssertionError("save_checkpoint started writing")
    monkeypatch.setattr(checkpoint, "atomic_path", no_writing)
    with pytest.raises(CheckpointError, match=r"progress/epoch"):
        save_checkpoint(path, small_model().state_dict(), progress={"epoch": value, "step": numpy.array(1)})
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["run.npz"]
    assert load_checkpoint(path)["config"] == {"good": True}



def test_the_writer_itself_refuses_pickles_and_numpy_reads_what_it_writes(tmp_path):
    with pytest.raises(ValueError, match="Object arrays cannot be saved when allow_pickle=False"):
        checkpoint.write_npz(io.BytesIO(), {"x": numpy.array([None])})
    path = str(tmp_path / "run.npz")
    save_checkpoint(path, small_model().state_dict(), progress={"epoch": 2}, config={"a": 1})
    with numpy.load(path) as archive:
        assert int(archive["progress/epoch"]) == 2 and str(archive["format"]) == checkpoint.FORMAT

def not_checkpoints(folder):
    """{name: path} of files a user might pass as a checkpoint by mistake."""
    numpy.save(folder / "weights.npy", numpy.zeros((2, 3)))                # one array, not an archive
    with zipfile.ZipFile(folder / "notes.zip", "w") as archive:            # a zip, but not of .npy
        archive.writestr("notes.txt", "hello")
    numpy.savez(folder / "plain.npz", weights=numpy.zeros(3))              # an .npz, no marker
    (folder / "empty.npz").write_bytes(b"")
    (folder / "folder.npz").mkdir()
    return {name: str(folder / name) for name in
            ("weights.npy", "notes.zip", "plain.npz", "empty.npz", "folder.npz")}


@pytest.mark.parametrize("name, message", [
    ("weights.npy", "a single .npy array"),
    ("notes.zip", r"notes.txt is not a .npy array"),
    ("plain.npz", "not a minigrad checkpoint"),
    ("empty.npz", "not a readable .npz checkpoint"),
    ("folder.npz", "is a folder, not a checkpoint file"),
])
def test_a_file_that_is_not_a_checkpoint_is_one_line_naming_it(tmp_path, name, message):
    path = not_checkpoints(tmp_path)[name]
    with pytest.raises(CheckpointError, match=message) as raised:
        load_checkpoint(path)
    assert path in str(raised.value) and "\n" not in str(raised.value)


def npz_with(path, entries):
    """An .npz of ``entries`` ({name: bytes of a .npy}), stored as numpy.savez stores them."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name + ".npy", data)
    return str(path)


def npy_bytes(array):
    buffer = io.BytesIO()
    numpy.save(buffer, array)
    return buffer.getvalue()


def test_an_entry_announcing_more_data_than_it_holds_is_refused_before_reserving_it(tmp_path):
    """numpy.load reserves what an entry's header announces before reading the entry."""
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2 ** 30,)})
    path = npz_with(tmp_path / "run.npz", {"format": npy_bytes(numpy.array(checkpoint.FORMAT)),
                                           "model/w": header.getvalue() + b"\0" * 16})
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"run.npz: .*model/w.*\(1073741824,\) float64"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20


@pytest.mark.parametrize("config, message", [
    (numpy.array("{not json"), "the config entry is missing or not JSON"),
    (numpy.array("[1, 2]"), "the config entry is not a JSON object"),
    (numpy.array(3.5), "the config entry is not a JSON object"),
])
def test_a_config_that_is_not_a_json_object_is_refused(tmp_path, config, message):
    path = str(tmp_path / "run.npz")
    numpy.savez(path, format=numpy.array(checkpoint.FORMAT), config=config)
    with pytest.raises(CheckpointError, match=f"run.npz: {message}"):
        load_checkpoint(path)
