"""Test doubles of external services: loopback fake servers with recorded, real-shaped answers."""
