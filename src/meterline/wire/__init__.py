"""Wire formats: pure translation between the clients'/upstreams' JSON and the internal types."""
