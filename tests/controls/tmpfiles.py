"""Leaves files: one in $TMPDIR, one in /dev/shm named after the run, one in /tmp matching
Playwright's artifacts pattern; prints their paths and exits."""

import os
import tempfile

run_id = os.environ["SANDBOX_RUN_ID"]
paths = []
with tempfile.NamedTemporaryFile(prefix="leak-", delete=False) as f:
    f.write(b"x" * 4096)
    paths.append(f.name)
shm = f"/dev/shm/sandbox-control-{run_id}"
with open(shm, "wb") as f:
    f.write(b"y" * 8192)
paths.append(shm)
artifacts = f"/tmp/playwright-artifacts-{run_id}"
os.mkdir(artifacts)
with open(os.path.join(artifacts, "trace.zip"), "wb") as f:
    f.write(b"z" * 1000)
paths.append(artifacts)
print("\n".join(paths), flush=True)
