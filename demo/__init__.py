"""The local loop: the cloud's code paths against an embedded AWS (moto in server mode)."""
