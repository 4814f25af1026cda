"""Answering questions from retrieved passages: the extractive and the llm engine, both grounded."""
