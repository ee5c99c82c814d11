"""What the measurements say: shared statistics (``statistics``) and formatting
(``formatting``), collection of stage outputs (``collect``), the paper's tables (``tables``) and
figures (``figures``), the adaptation-cost measures (``adaptation_cost``), drift beyond
perplexity (``drift``), semantic retention (``retention``), utility (``utility``) and the
paradox's claims per training setting (``paradox``)."""
