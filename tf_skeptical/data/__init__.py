"""The data contracts: the class map, AudioSet's segments CSV and released embeddings, audio
decoding, the log-mel frontend and its parameters, the ontology, and the package's own
example shards (examples) that prepare writes and every later stage reads."""
