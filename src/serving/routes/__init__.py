"""One router per resource (see ARCHITECTURE.md convention 8)."""
