"""SQL shared by the SQL backends: dialects and cursors (``common``), the request log
(``requests``), the review queue (``flags``), the operations tables (``ops``) and SQLite
connections (``sqlite``)."""
