"""edgeshelf.converters (see DESIGN.md)."""
