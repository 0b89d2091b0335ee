"""Bundled synthetic datasets (the hotel-chain demo generator)."""
