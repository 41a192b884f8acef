from __future__ import annotations

from pathlib import Path

import pytest

from streamdeid.config import Config, bundled_configs, load_config, parse_config
from streamdeid.errors import ConfigError


@pytest.mark.parametrize("name", list(bundled_configs()))
def test_bundled_configs_are_valid(name: str) -> None:
    assert isinstance(load_config(name), Config)


def test_bundled_configs_exist() -> None:
    assert set(bundled_configs()) >= {"default", "cctv", "webcam", "archive"}


def test_a_local_file_named_like_a_bundled_config_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cctv").write_text("pipeline: {detect_every: 7}\n", encoding="utf-8")
    assert load_config("cctv").pipeline.detect_every == 7
    assert load_config("webcam").detector.backend == "blazeface"  # bundled, no file here


def test_unknown_config_name_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="config file not found: 'nosuch'"):
        load_config("nosuch")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"obscure": {"methd": "blur"}}, "unknown field 'obscure.methd'"),
        ({"obscure": {"method": "smudge"}}, "field 'obscure.method'"),
        ({"detector": {"confidence": 1.5}}, "field 'detector.confidence'"),
        ({"pipeline": {"detect_every": 0}}, "field 'pipeline.detect_every'"),
        ({"obscure": {"color": [0, 0, 300]}}, "color"),
        (
            {"pipeline": {"detect_every": 30}, "tracker": {"max_coast_frames": 10}},
            "tracker.max_coast_frames",
        ),
        ([1, 2], "expected a mapping"),
    ],
)
def test_bad_values_name_the_field(data, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_cross_field_error_is_short_and_names_both_fields() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("webcam").override({"pipeline.detect_every": 30})
    message = str(e.value)
    assert "tracker.max_coast_frames" in message and "pipeline.detect_every" in message
    assert len(message) < 250 and "{" not in message


def test_yaml_errors_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("obscure: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_override_validates_and_skips_none() -> None:
    c = Config().override({"obscure.method": "solid", "pipeline.detect_every": None})
    assert c.obscure.method == "solid" and c.pipeline.detect_every == 4
    with pytest.raises(ConfigError, match=r"obscure\.mask_scale"):
        Config().override({"obscure.mask_scale": 0.5})


def test_the_python_defaults_are_the_default_config() -> None:
    # streamdeid.Config() (the API without a file) and configs/default.yaml must not drift apart.
    assert Config() == load_config("default")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"detector.backend": "blazeface"}, "needs a fully convolutional backend"),
        (
            {"detector.focus.coarse_height": 0, "detector.focus.motion": False},
            "nothing would find a new face",
        ),
        ({"detector.motion": {"enabled": True}}, "renamed detector.focus"),
    ],
)
def test_focus_settings_that_would_leave_faces_unsearched_are_refused(
    overrides: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Config().override(overrides)
    # The fix the message names works.
    if "detector.backend" in overrides:
        Config().override({**overrides, "detector.focus.enabled": False})
