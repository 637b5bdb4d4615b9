"""Self-hosted endpoints over HTTP: SageMaker-compatible model servers and
OpenAI-compatible chat servers."""
