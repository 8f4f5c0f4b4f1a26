-- The sqlite3 program of `make traces`: inserts, an index, updates, deletes
-- and queries on an in-memory database.
CREATE TABLE kv(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n REAL);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 60000)
INSERT INTO kv SELECT i, printf('key-%08d', (i * 7919) % 60000), printf('value-%d-%s', i, hex(i)), i * 0.25 FROM s;
CREATE INDEX kv_k ON kv(k);
CREATE INDEX kv_n ON kv(n);
UPDATE kv SET v = v || '-updated', n = n * 2 WHERE id % 3 = 0;
DELETE FROM kv WHERE id % 4 = 0;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 30000)
INSERT INTO kv(k, v, n) SELECT printf('new-%d', i), printf('%.*c', i % 200, 'x'), i FROM s;
SELECT count(*), sum(n), min(k), max(k) FROM kv;
SELECT k, length(v) FROM kv WHERE k LIKE 'key-0000%' ORDER BY k LIMIT 5;
SELECT substr(k, 1, 5) AS p, count(*) FROM kv GROUP BY p ORDER BY p;
DELETE FROM kv WHERE n > 1000;
SELECT count(*) FROM kv;
