"""Evaluation against gold suites: gold files, matching rules, scoring, the runner and its reports."""
