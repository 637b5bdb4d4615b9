"""Running it in production: Prometheus metrics, health and readiness over HTTP
(``--metrics-listen``)."""
