"""zoo benchmarks: measured side by side with a peer in one run (see README.md here)."""
