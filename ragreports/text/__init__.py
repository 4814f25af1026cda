"""The pure string layer: normalisation, cleaning, numbers, outline and sentences, quote location, tokens."""
