"""Developer tools, not installed with the package: run them from the repository root as
`python -m tools.<name>` (command_reference, graph_docs, layout_templates, make_scenarios, ...)."""
