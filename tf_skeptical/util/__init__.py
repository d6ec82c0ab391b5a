"""What every stage leans on and none is about: reading and writing files local or remote
(files), what an artifact was made from (provenance), bad input named by file and row
(bad_input), progress lines, Beam's options, and the TFRecord wire format and shard writer."""
