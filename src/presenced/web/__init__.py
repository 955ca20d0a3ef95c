"""HTML served by presenced: the API documentation pages (``web.docs``)."""
