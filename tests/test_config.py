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
        ({"obscure": {"blur_fraction": 1.5}}, "field 'obscure.blur_fraction'"),  # filter's bound
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
    assert c.obscure.method == "solid" and c.pipeline.detect_every == 5
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


# -- options of other backends -------------------------------------------------------------------

NO_FOCUS = {"detector.focus.enabled": False}  # blazeface and mediapipe cannot run a cheap pass


@pytest.mark.parametrize(
    ("overrides", "field", "backend"),
    [
        ({"detector.tile_size": 192}, "detector.tile_size", "'retinaface'"),
        ({"detector.whole_frame": False}, "detector.whole_frame", "'retinaface'"),
        ({"detector.max_tiles_per_frame": 9}, "detector.max_tiles_per_frame", "'retinaface'"),
        ({"detector.tile_overlap": 0.5}, "detector.tile_overlap", "'retinaface'"),
        ({"detector.confidence": 0.5}, "detector.confidence", "'retinaface'"),
        ({"detector.model": "short"}, "detector.model", "'retinaface'"),
        ({"detector.ensemble": ["blazeface"]}, "detector.ensemble", "'retinaface'"),
        (
            {"detector.backend": "centerface", "detector.retinaface.scales": [2.0]},
            "detector.retinaface",
            "'centerface'",
        ),
        (
            {"detector.backend": "blazeface", "detector.centerface.engine": "opencv", **NO_FOCUS},
            "detector.centerface",
            "'blazeface'",
        ),
        (
            {"detector.backend": "mediapipe", "detector.threads": 2, **NO_FOCUS},
            "detector.threads",
            "'mediapipe'",
        ),
        (
            {
                "detector.backend": "ensemble",
                "detector.ensemble": ["retinaface", "centerface"],
                "detector.tile_size": 128,
                **NO_FOCUS,
            },
            "detector.tile_size",
            "detector.ensemble (retinaface, centerface)",
        ),
    ],
)
def test_an_option_the_backend_does_not_read_is_an_error(
    overrides: dict, field: str, backend: str
) -> None:
    # Each of these used to be accepted and silently ignored by the backend that runs.
    with pytest.raises(ConfigError) as e:
        Config().override(overrides)
    message = str(e.value)
    assert f"{field} " in message and backend in message and "does nothing" in message


def test_the_error_says_where_the_backends_threshold_is() -> None:
    with pytest.raises(ConfigError, match=r"retinaface is detector\.retinaface\.confidence"):
        parse_config({"detector": {"confidence": 0.5}})


def test_options_written_at_their_default_are_harmless() -> None:
    # Explicit defaults do nothing different from leaving them out, so they are not refused.
    data = {"detector": {"confidence": 0.3, "tile_size": 256, "model": "full", "threads": None}}
    assert parse_config(data) == Config()


@pytest.mark.parametrize(
    "overrides",
    [
        {"detector.backend": "blazeface", "detector.tile_size": 192, **NO_FOCUS},
        {"detector.backend": "mediapipe", "detector.model": "short", **NO_FOCUS},
        {"detector.retinaface.scales": [0.5, 1.0], "detector.threads": 2},
        {"detector.backend": "centerface", "detector.centerface.engine": "opencv"},
        # An ensemble accepts what any of its members reads.
        {
            "detector.backend": "ensemble",
            "detector.ensemble": ["centerface", "blazeface"],
            "detector.tile_size": 128,
            "detector.centerface.scales": [1.0],
            **NO_FOCUS,
        },
    ],
)
def test_options_of_the_backends_in_use_are_accepted(overrides: dict) -> None:
    Config().override(overrides)


@pytest.mark.parametrize(
    ("base", "field"),
    [
        ({}, ("retinaface", "confidence")),
        ({"detector.backend": "centerface"}, ("centerface", "confidence")),
        ({"detector.backend": "blazeface", **NO_FOCUS}, ("confidence",)),
    ],
)
def test_confidence_flag_sets_the_threshold_of_the_backend_in_use(base: dict, field: tuple) -> None:
    # --confidence used to set detector.confidence and detector.centerface.confidence, neither
    # of which RetinaFace (the default) reads.
    from streamdeid.config import CONFIDENCE_OF_BACKENDS

    config = Config().override({**base, CONFIDENCE_OF_BACKENDS: 0.42})
    node = config.detector
    for part in field:
        node = getattr(node, part)
    assert node == 0.42


def test_backend_kwargs_name_exactly_what_each_constructor_takes() -> None:
    import inspect

    from streamdeid.config import BACKEND_OPTIONS
    from streamdeid.detect.blazeface import BlazeFaceDetector
    from streamdeid.detect.centerface import CenterFaceDetector
    from streamdeid.detect.mediapipe import MediaPipeDetector
    from streamdeid.detect.retinaface import RetinaFaceDetector
    from streamdeid.detect.tiled import TiledDetector

    classes = {
        "retinaface": RetinaFaceDetector,
        "centerface": CenterFaceDetector,
        "blazeface": BlazeFaceDetector,
        "mediapipe": MediaPipeDetector,
    }
    assert set(classes) == set(BACKEND_OPTIONS)
    for backend, cls in classes.items():
        accepted = set(inspect.signature(cls).parameters)
        if "tiling" in accepted:  # **tiling: TiledDetector's own arguments
            accepted |= set(inspect.signature(TiledDetector).parameters)
        assert set(Config().detector.backend_kwargs(backend)) <= accepted, backend


# -- one bound for the config and the detector -----------------------------------------------


def test_scale_bounds_are_the_same_in_the_config_and_the_detector() -> None:
    from streamdeid.detect.fullconv import FullyConvolutionalDetector
    from streamdeid.limits import MAX_SCALE, MIN_SCALE

    class Nothing(FullyConvolutionalDetector):
        def _forward(self, image):  # pragma: no cover - never run
            raise AssertionError

    for scale in (MIN_SCALE, MAX_SCALE):
        Config().override({"detector.retinaface.scales": [scale]})
        Nothing(0.5, scales=(scale,))
    for scale in (MIN_SCALE / 2, MAX_SCALE * 1.5):
        with pytest.raises(ConfigError, match="scales"):
            Config().override({"detector.retinaface.scales": [scale]})
        with pytest.raises(ValueError, match="scales"):
            Nothing(0.5, scales=(scale,))


def test_retinaface_precision_reaches_the_detector_and_a_bad_one_is_named() -> None:
    from streamdeid.build import make_detector, retinaface_precision

    # Unset: int8 (the faster one, same masked recall), float for the surrogate method.
    assert retinaface_precision(Config()) == "int8"
    assert retinaface_precision(Config().override({"obscure.method": "surrogate"})) == "fp32"
    config = Config().override({"detector.retinaface.precision": "fp32", **NO_FOCUS})
    assert retinaface_precision(config) == "fp32"
    chosen = Config().override(
        {"detector.retinaface.precision": "int8", "obscure.method": "surrogate"}
    )
    assert retinaface_precision(chosen) == "int8"  # a precision set is a precision kept
    for built, variant in (
        (config, "fp32"),
        (Config().override({"obscure.method": "surrogate"}), "fp32"),
        (Config(), "int8"),
    ):
        detector = make_detector(built)
        inner = getattr(detector, "inner", detector)
        assert inner.variant.startswith(variant)
        detector.close()
    with pytest.raises(ConfigError, match=r"detector\.retinaface\.precision"):
        Config().override({"detector.retinaface.precision": "int4"})
