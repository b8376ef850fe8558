"""Run ``rewardlab`` in a process of a multi-process launch, failing on purpose in process 1
(for the test that a failed process is an error, not a hang)."""

import os
import sys

from rewardlab.cli import main
from rewardlab.models.encode import TextEncoder

if os.environ.get("RANK") == "1":
    def _fail(self: TextEncoder, ids: list[list[int]]) -> None:
        raise RuntimeError("injected failure in process 1")

    TextEncoder._forward = _fail  # type: ignore[method-assign]

sys.exit(main(sys.argv[1:]))
