"""sandbox: find memory leaks and resource-cleanup bugs in long-running browser workloads."""
