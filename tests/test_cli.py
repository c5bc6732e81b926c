"""cli.write_json: the one atomic JSON writer of the package."""
import json
import os

import pytest

from gansynth_tf import cli


def test_write_json_round_trips_and_passes_the_dump_options(tmp_path):
    path = str(tmp_path / "a.json")
    assert cli.write_json(path, {"genre": "électro", "n": [1, 2]}, indent=1,
                          ensure_ascii=False) == path
    text = open(path, encoding="utf-8").read()
    assert text == '{\n "genre": "électro",\n "n": [\n  1,\n  2\n ]\n}'
    cli.write_json(path, {"genre": "électro"})
    assert open(path).read() == '{"genre": "\\u00e9lectro"}'
    assert os.listdir(tmp_path) == ["a.json"]


def test_write_json_keeps_the_umask_mode_of_an_ordinary_open(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    atomic = cli.write_json(str(tmp_path / "atomic.json"), {})
    assert os.stat(atomic).st_mode == os.stat(plain).st_mode


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "state.json")
    cli.write_json(path, {"step": 1})
    with pytest.raises(TypeError):
        cli.write_json(path, {"step": 2, "bad": object()})
    with open(path) as f:
        assert json.load(f) == {"step": 1}
    assert os.listdir(tmp_path) == ["state.json"]
    # A folder that is not there: the OSError reaches the caller, nothing is created.
    with pytest.raises(FileNotFoundError):
        cli.write_json(str(tmp_path / "missing" / "x.json"), {})
    assert os.listdir(tmp_path) == ["state.json"]
