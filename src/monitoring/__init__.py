"""Models and data watched after training: data quality per refresh (``data_quality``)."""
