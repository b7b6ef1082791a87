"""C2PA provenance: signing media as AI-generated (:mod:`.c2pa_sign`) and a test PKI (:mod:`.pki`)."""
