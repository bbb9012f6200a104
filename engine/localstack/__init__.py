"""Local stand-ins for the Alibaba Cloud services fpscreen uses, for tests and the local stack.

`oss_compat.OssCompatServer` is an OSS endpoint the real `oss2` SDK can talk to: moto's in-process S3 behind a
small WSGI shim that translates the OSS dialect (x-oss-* headers, OSS XML quirks, `?bucketInfo`) on the fly.
`mns` is the local MNS endpoint (one emulator split by concern, as LocalStack does: `protocol`, `auth`, `store`,
`handlers`, `push`, `server`). Every HTTP server here runs on `engine.wsgi.WsgiServer` (waitress).
Nothing here is imported by the functions or the `shared` layer.
"""
