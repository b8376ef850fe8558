"""Fixtures and Hypothesis profiles of the data tests.

Profiles (chosen with the ``HYPOTHESIS_PROFILE`` environment variable):

``ci`` (default)  few examples per fuzz test, so all fuzz tests together stay within ~30 s;
``fuzz``          many examples and no deadline, for ``make fuzz``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No example database: runs leave no .hypothesis/ folder in the checkout; a failure prints
# the example (and, in the fuzz profile, a blob to replay it with @reproduce_failure).
settings.register_profile("ci", max_examples=40, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=3000, deadline=None, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder: ``$REWARDLAB_SHARED_DATA``, else ``<repo>/../shared/data``.

    The variable lets a git worktree (whose parent is not the repo's) run the real-data tests.
    """
    env = os.environ.get("REWARDLAB_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data not found (real-data tests need the shared folder beside "
                    "the checkout, or REWARDLAB_SHARED_DATA)")
    return path.resolve()
