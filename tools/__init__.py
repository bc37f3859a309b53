"""Developer tools that are not installed with the package (see tools/README.md)."""
