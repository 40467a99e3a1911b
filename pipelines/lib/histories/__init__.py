"""Watch-history importers: one parser module per export format, the shared raw-event frame
(:mod:`.common`) and the importer that resolves titles and appends to the lake (:mod:`.importer`).
"""
