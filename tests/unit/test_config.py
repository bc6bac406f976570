"""The settings object: sources in order, types coerced, bad values refused with every reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import EngineSettings, load_settings


def test_path_settings_given_as_text_become_paths(tmp_path):
    direct = EngineSettings(data_dir=str(tmp_path), weights_cache_dir="~/weights")
    assert direct.data_dir == tmp_path and isinstance(direct.data_dir, Path)
    assert direct.weights_cache_dir == Path.home() / "weights"
    assert load_settings(environ={}, data_dir=str(tmp_path)).weights_dir == tmp_path / "weights"


def test_sources_apply_in_order_defaults_toml_environment_overrides(tmp_path):
    toml = tmp_path / "engine.toml"
    toml.write_text('[modengine]\nmax_batch_size = 8\nsample_interval_ms = 500\n', encoding="utf-8")
    environment = {"MODENGINE_SAMPLE_INTERVAL_MS": "250", "MODENGINE_API_AUTH_ENABLED": "off"}
    settings = load_settings(toml, environment, decode_mode="keyframes")
    assert (settings.max_batch_size, settings.sample_interval_ms) == (8, 250)
    assert settings.api_auth_enabled is False and settings.decode_mode == "keyframes"
    assert settings.segment_length_s == EngineSettings().segment_length_s


def test_unknown_toml_keys_and_bad_values_are_refused_with_every_reason(tmp_path):
    toml = tmp_path / "engine.toml"
    toml.write_text("max_batch_sise = 8\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown setting 'max_batch_sise'"):
        load_settings(toml, {})
    with pytest.raises(ValueError, match="decode_mode.*segment_task_cpus must be > 0"):
        EngineSettings(decode_mode="fast", segment_task_cpus=0)
