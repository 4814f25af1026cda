"""The standard brief of a report: the template model, its cue words, the two engines and the renderers."""
