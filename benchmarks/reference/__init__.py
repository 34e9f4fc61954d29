"""Reference implementations the benchmarks compare against (loaded from outside this repo)."""
