"""Side-by-side benchmarks of TTG against the machine's limit and its peers (`make bench`)."""
