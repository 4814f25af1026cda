"""Chat models: the protocol and records, prompt files, context packing, structured output, and the providers."""
