"""What an operator sees of a running server: the access log and Prometheus metrics."""
