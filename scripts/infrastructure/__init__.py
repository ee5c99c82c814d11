"""What every layer relies on: stage logging (``stage_log``), plain-file records (``records``),
config checks and the experiment grid (``study_config``), registries of implementations
(``registry``), code versions and the environment (``provenance``), the run manifest
(``manifest``) and the frozen archive (``archive``)."""
