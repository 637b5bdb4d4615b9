"""Adversarial tier: hostile SQL users, clients, models and bytes (issue 10); the
protocol fuzzer."""
