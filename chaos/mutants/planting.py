"""Planting a defect: a copy of the service's package in a directory of its own, one snippet replaced."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from chaos.mutants.catalogue import Defect


class PatchError(ValueError):
    """A defect that cannot be planted because its snippet does not occur exactly once; the service
    drifted from the catalogue, and a defect that was never planted must not count as caught."""


def service_source() -> Path:
    """The directory of the `service` package this harness would start (found without importing it)."""
    spec = importlib.util.find_spec("service")
    if spec is None or not spec.submodule_search_locations:
        raise PatchError("the service package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def check_applies(defect: Defect, source: Path | None = None) -> None:
    """Raise PatchError (naming the defect) unless its `old` snippet occurs exactly once."""
    source = source or service_source()
    path = source / defect.file
    try:
        text = path.read_text()
    except OSError as exc:
        raise PatchError(f"defect {defect.name}: cannot read {source.name}/{defect.file}: "
                         f"{exc.strerror or exc}") from exc
    count = text.count(defect.old)
    if count != 1:
        raise PatchError(f"defect {defect.name}: its snippet occurs {count} times in {source.name}/{defect.file}, "
                         f"not once: {defect.old.strip()!r}")


def plant(defect: Defect | None, root: Path, source: Path | None = None) -> Path:
    """Copy the package at ``source`` (default: the reference service's) into ``root`` and apply
    ``defect`` (None: an unmutated copy); returns ``root``, the directory to run the service in."""
    source = source or service_source()
    if defect is not None:
        check_applies(defect, source)
    copy = root / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    if defect is not None:
        target = copy / defect.file
        target.write_text(target.read_text().replace(defect.old, defect.new, 1))
    return root
