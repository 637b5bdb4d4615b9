"""When and how fast requests go: each service's adaptive send rate, a statement's time
budget, and a stopped statement's requests never starting."""
