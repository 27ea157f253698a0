"""edgeshelf.towers (see DESIGN.md)."""
