"""What a run left behind, in three jobs the verifier (:mod:`sandbox.verifier`) puts in order:
finding it (:mod:`.processes`, :mod:`.files`, :mod:`.state`), acting on it (:mod:`.act`: kill,
remove) and checking that nothing remains (:mod:`.remains`)."""
