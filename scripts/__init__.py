"""The `hub` command line (installed as hub.cli): thin click commands over the hub library."""
