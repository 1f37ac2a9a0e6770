"""Pseudo-labels for Stage I' and Stage II: k-means over utterance embeddings, label files, diagnostics."""
