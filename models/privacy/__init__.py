"""Differential-privacy accounting shared by the federated models."""
