"""Federated, differentially private item-side recommender (Flower + Opacus)."""
