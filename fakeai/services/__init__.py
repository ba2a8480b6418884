"""Non-generating domain logic (moderation, ...): no HTTP, no wire formats."""
