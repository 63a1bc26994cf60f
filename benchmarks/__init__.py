"""cmerisk's benchmarks: each module times one stage against a plain baseline."""
