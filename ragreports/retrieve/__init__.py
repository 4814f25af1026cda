"""Retrieval: question understanding and routing, then hybrid (dense + BM25) search."""
