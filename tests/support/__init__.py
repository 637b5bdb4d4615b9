"""What the tiers share: fake services, models, the backend launcher, fuzz generators."""
