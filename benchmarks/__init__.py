"""edgeshelf.benchmarks (see DESIGN.md)."""
