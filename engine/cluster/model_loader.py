"""Builds the classifier named by the settings, inside whichever process will run it.

"default" is the shipped hierarchical model (models.default); "package.module:callable" names
any factory returning a FrameClassifier (tests use this to plug in their test double). If the
default model's code or weights are missing, we say so instead of producing anything.
"""

from __future__ import annotations

import importlib

from engine.config import EngineSettings
from models.base import FrameClassifier, NoModelInstalledError


class ModelCannotRunError(NoModelInstalledError):
    """The model is installed but cannot run here as configured (bf16 on a CPU without it).

    A NoModelInstalledError, so every caller that already reports a missing model (the CLI's
    exit code, a job's FAILED status, batch) reports this the same readable way.
    """


def load_classifier(settings: EngineSettings) -> FrameClassifier:
    """Construct the configured classifier; raises NoModelInstalledError when there is none."""
    if settings.model == "default":
        return _load_default(settings)
    factory = _import_factory(settings.model)
    classifier = factory()
    if not isinstance(classifier, FrameClassifier):
        raise TypeError(f"{settings.model} did not return a FrameClassifier")
    return classifier


def ensure_model_available(settings: EngineSettings, device: str | None = None) -> None:
    """Cheap check, in the driver, that the configured model can be built at all (its code
    imports, and on a CPU `device` its precision can run on this CPU), so a missing model or
    an impossible setting is reported at once instead of through failing actors.

    device: where the actors will run ("cpu" or "cuda"); None skips the precision check, for
    drivers that cannot know (a remote cluster's workers may be other machines).
    """
    if settings.model == "default":
        try:
            import models.default  # noqa: F401
        except ImportError as error:
            raise NoModelInstalledError(
                f"no moderation model is installed: the default classifier is not available ({error})"
            ) from error
        if device is not None:
            check_precision_runs(settings, device)
        return
    _import_factory(settings.model)


def check_precision_runs(settings: EngineSettings, device: str) -> str:
    """The precision the default model will run in on `device` (of this machine), or
    ModelCannotRunError naming what the hardware lacks (an explicit bf16 on an AVX2-only CPU)."""
    import torch

    from models.runtime import PrecisionUnsupportedError, resolve_precision

    try:
        return resolve_precision(settings.precision, torch.device(device))
    except PrecisionUnsupportedError as error:
        raise ModelCannotRunError(str(error)) from error


def _load_default(settings: EngineSettings) -> FrameClassifier:
    try:
        from models.default import load_default_classifier
        from models.runtime import PrecisionUnsupportedError
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
    except PrecisionUnsupportedError as error:  # an actor on a CPU the driver did not check
        raise ModelCannotRunError(str(error)) from error


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
