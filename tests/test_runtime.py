import subprocess
import sys

import pytest

ROUNDS = 40
ELEMENTS = 512 * 512 * 32  # one 512x512x32 float32 feature map, 33.5 MB
PAGES = ELEMENTS * 4 // 4096

# The feature map made, touched and freed ROUNDS times; prints the page faults of all rounds.
SCRIPT = f"""
import resource, sys, torch
from srnl import runtime
getattr(runtime, sys.argv[1], lambda: None)()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    torch.ones({ELEMENTS})
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(setting: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, setting], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_keep_freed_memory_reuses_pages_that_the_default_faults_in_again():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc allocator settings")
    assert faults("default") > 0.9 * ROUNDS * PAGES  # every round maps and faults in fresh pages
    # The heap needs a few rounds before a freed block fits the next map (2 to 7 of 40 rounds
    # faulted here under load; CI once needed more than 5), depending on where small allocations
    # land; after that, no round faults.
    assert faults("keep_freed_memory") < ROUNDS * PAGES / 2
