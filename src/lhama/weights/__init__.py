"""Getting weights: the registry of known sources, prepare (assemble, convert, verify, install) and resolve (name -> directory)."""
