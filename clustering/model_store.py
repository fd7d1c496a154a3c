"""Fitted pipelines on disk: saved with joblib under MODEL_STORAGE_DIR, with a sha256.

joblib files are pickles, so loading one runs code. A model is therefore
only ever loaded from our own storage folder, by a file name we generated,
after its hash matches the one recorded in the database when it was saved.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy
import pandas
import scipy
import sklearn
from django.conf import settings

# \Z, not $: "$" would also accept the name followed by a newline.
FILE_NAME = re.compile(r"^run-\d+-[0-9a-f]{16}\.joblib\Z")


class ModelFileError(RuntimeError):
    """The stored model is missing, renamed or altered; it will not be loaded."""


@dataclass(frozen=True)
class StoredModel:
    file_name: str
    sha256: str
    library_versions: dict[str, str]


def library_versions() -> dict[str, str]:
    return {
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


def storage_dir() -> Path:
    path = Path(settings.MODEL_STORAGE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_save(*, run_id: int, pipeline) -> StoredModel:
    """Write the pipeline atomically (temporary name, then rename) and return its hash."""
    file_name = f"run-{int(run_id)}-{secrets.token_hex(8)}.joblib"
    path = storage_dir() / file_name
    partial = path.with_suffix(".partial")
    joblib.dump(pipeline, partial)
    partial.replace(path)
    return StoredModel(file_name, file_sha256(path), library_versions())


def model_load(*, file_name: str, sha256: str):
    """Load a pipeline we saved, after checking its name and hash."""
    if not FILE_NAME.match(file_name or ""):
        raise ModelFileError(f"refusing to load {file_name!r}: not a model file name we write")
    path = storage_dir() / file_name
    if not path.is_file():
        raise ModelFileError(f"the model file {file_name} is missing from {storage_dir()}")
    if file_sha256(path) != sha256:
        raise ModelFileError(f"the model file {file_name} has been altered (hash mismatch)")
    return joblib.load(path)


def model_delete(*, file_name: str) -> None:
    if FILE_NAME.match(file_name or ""):
        (storage_dir() / file_name).unlink(missing_ok=True)
