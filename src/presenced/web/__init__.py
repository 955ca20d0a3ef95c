"""HTML served by presenced: the embeddable live presence directory (and API docs pages)."""
