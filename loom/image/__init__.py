"""The image service: records, a safe streaming store, format inspection."""
