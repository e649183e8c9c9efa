import subprocess
import sys

import pytest

# A 34 MB tensor (a 512x512x32 feature map) made, touched and freed ten times; prints the page
# faults of the last five rounds (the heap needs a few rounds to hold a free block that fits).
SCRIPT = """
import resource, sys, torch
from srnl import runtime
getattr(runtime, sys.argv[1], lambda: None)()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.ones(512 * 512 * 32)
before = faults()
for _ in range(5):
    torch.ones(512 * 512 * 32)
print(faults() - before)
"""


def later_rounds_faults(setting: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, setting], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_keep_freed_memory_reuses_pages_that_the_default_faults_in_again():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc allocator settings")
    default = later_rounds_faults("default")
    assert default > 5 * 512 * 512 * 32 * 4 // 4096 // 2  # most pages faulted in every round
    assert later_rounds_faults("keep_freed_memory") < default / 4
