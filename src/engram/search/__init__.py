"""Search: the query language (parsed once, compiled per backend) and text analysis."""
