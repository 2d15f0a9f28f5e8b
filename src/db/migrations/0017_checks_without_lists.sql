-- The `CHECK`s of the entries' status and the alerts' kind, written `x IN ('a', 'b', …)`,
-- made SQLite build an ephemeral table of the values at every insert (a list of more than
-- two values is looked up, not compared in place): ~1.5 µs of the writer's ~40 a report,
-- and each `missing` entry of the tick. Written `x = 'a' OR x = 'b' …` they accept and
-- refuse exactly the same rows (the column is NOT NULL; its affinity and collation apply
-- to `=` as to `IN`) and cost nothing. Changing a `CHECK` does not change how a row is
-- stored, so the tables' definitions are edited in place, the way SQLite documents for
-- such changes (https://sqlite.org/lang_altertable.html, "making other kinds of table schema
-- changes"), instead of copying 10,000,000 rows: the definition replaced in `sqlite_schema`,
-- this connection's schema read again (`writable_schema = RESET`), and the schema cookie
-- moved (a table made and dropped) so that every other connection reads it again too.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''success'', ''failed'', ''missing'', ''started'', ''log''))',
    'CHECK (status = ''success'' OR status = ''failed'' OR status = ''missing'' '
        || 'OR status = ''started'' OR status = ''log'')')
WHERE type = 'table' AND name = 'entries';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''late'', ''failed'', ''suspect'', ''hung'', ''recovered'','
        || char(10) || '        ''agent_silent'', ''agent_back'', ''reminder''))',
    'CHECK (kind = ''late'' OR kind = ''failed'' OR kind = ''suspect'' OR kind = ''hung'' '
        || 'OR kind = ''recovered'' OR kind = ''agent_silent'' OR kind = ''agent_back'' '
        || 'OR kind = ''reminder'')')
WHERE type = 'table' AND name = 'alerts';

PRAGMA writable_schema = RESET;

CREATE TABLE schema_moved (x);
DROP TABLE schema_moved;
