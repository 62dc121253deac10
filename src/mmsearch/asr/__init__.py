"""Speech recognition: audio -> text spans with timestamps."""
