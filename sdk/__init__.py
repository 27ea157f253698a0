"""edgeshelf.sdk (see DESIGN.md)."""
