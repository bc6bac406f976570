"""Builds the classifier named by the settings, inside whichever process will run it.

"default" is the shipped hierarchical model (models.default); "package.module:callable" names
any factory returning a FrameClassifier (tests use this to plug in their test double). If the
default model's code or weights are missing, we say so instead of producing anything.
"""

from __future__ import annotations

import importlib

from engine.config import EngineSettings
from models.base import FrameClassifier, NoModelInstalledError


def load_classifier(settings: EngineSettings) -> FrameClassifier:
    """Construct the configured classifier; raises NoModelInstalledError when there is none."""
    if settings.model == "default":
        return _load_default(settings)
    factory = _import_factory(settings.model)
    classifier = factory()
    if not isinstance(classifier, FrameClassifier):
        raise TypeError(f"{settings.model} did not return a FrameClassifier")
    return classifier


def ensure_model_available(settings: EngineSettings) -> None:
    """Cheap check, in the driver, that the configured model can be built at all (its code
    imports), so a missing model is reported at once instead of through failing actors."""
    if settings.model == "default":
        try:
            import models.default  # noqa: F401
        except ImportError as error:
            raise NoModelInstalledError(
                f"no moderation model is installed: the default classifier is not available ({error})"
            ) from error
        return
    _import_factory(settings.model)


def _load_default(settings: EngineSettings) -> FrameClassifier:
    try:
        from models.default import load_default_classifier
    except ImportError as error:
        raise NoModelInstalledError(
            "no moderation model is installed: the default classifier (models.default) is not "
            f"available ({error}); install the project with its model packages or set "
            "MODENGINE_MODEL to a 'module:callable' factory"
        ) from error
    try:
        return load_default_classifier(
            settings.weights_dir, threads=settings.torch_threads, precision=settings.precision
        )
    except (FileNotFoundError, ModuleNotFoundError) as error:
        raise NoModelInstalledError(f"the default model's weights are not installed: {error}") from error


def _import_factory(spec: str):
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"model must be 'default' or 'module:callable', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise NoModelInstalledError(f"model module {module_name!r} cannot be imported: {error}") from error
    try:
        return getattr(module, attribute)
    except AttributeError as error:
        raise NoModelInstalledError(f"{module_name!r} has no attribute {attribute!r}") from error
