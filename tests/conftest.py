"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
"""Real data sets, kept beside the checkout (``<repo>/../shared/data``), not in it."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not found (real-data tests need the shared folder beside "
                    "the checkout)")
    return SHARED_DATA.resolve()


@pytest.fixture(scope="session", autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One feature cache for the session: tests never touch ~/.cache, and share encodings."""
    import os

    os.environ["REWARDLAB_CACHE"] = str(tmp_path_factory.mktemp("feature-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Factory: ``tmpfs(size="64k", read_only=False)`` mounts a fresh tmpfs and returns its path
    (a small disk that really fills up, or a really read-only one). Skips where mounting is not
    permitted (not root, or no CAP_SYS_ADMIN); unmounts afterwards."""
    import shutil
    import subprocess

    mounted: list[Path] = []

    def mount(size: str = "64k", read_only: bool = False) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command here; the injected-error tests cover this path")
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'}); "
                        f"the injected-error tests cover this path instead")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
