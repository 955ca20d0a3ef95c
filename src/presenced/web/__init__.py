"""HTML served by presenced: the API documentation pages (``web.docs``) and the embeddable
live presence directory (``web.embed``)."""
