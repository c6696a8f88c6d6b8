"""Starts a child that lives 50 ms (sleep 0.05), prints its pid, waits for it and exits."""

import subprocess

child = subprocess.Popen(["sleep", "0.05"])
print(child.pid, flush=True)
child.wait()
