"""The local fingerprint engine: what MPS Video DNA does in the cloud, on one machine.

`engine.core` holds the vocabulary (a modality, its fingerprint, its index, a match); each modality lives in its
own package (`engine.video`, `engine.audio`, `engine.text`); `engine.library` persists libraries and
`engine.matcher` turns a file plus a library into an MPS-shaped `FpShotResult`.
"""
