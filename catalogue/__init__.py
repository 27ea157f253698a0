"""edgeshelf.catalogue (see DESIGN.md)."""
