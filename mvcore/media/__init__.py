"""Media plumbing shared by every backend: ffmpeg (probe, run, atomic outputs), video steps (mux,
stitch) and audio steps (decode, clip, overlay).  It knows nothing of providers or flavors."""
