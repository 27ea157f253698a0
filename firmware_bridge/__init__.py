"""edgeshelf.firmware_bridge (see DESIGN.md)."""
