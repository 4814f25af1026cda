"""The index: embedders, the SQLite docstore, the BM25 lexical index and the Chroma vector index."""
