-- The alias oracle's writing statements (tests/oracle/test_alias_oracle.py): each statement runs on
-- the stored functions directly and on the alias functions through the proxy, on both
-- answer paths, and both must answer the same. {db} is the side's database.
-- The format: tests/support/sql_corpus.py.
-- A write is judged by its affected rows and its tables afterwards (w unless told).

-- == writes ==
-- case: insert-select-all-four
INSERT INTO w (a, b, c, x, n, tag, amount, r, k) SELECT a, b, c, x, n, tagline(a, b, c), scaled(x, n), ratio(c, x), bucket(a, s, x) FROM t

-- case: insert-values-constants
INSERT INTO w (tag, amount, r, k) VALUES (tagline(1, 'x', 1), scaled(1.5, 2), ratio(1, 3), bucket(1, 'x', 1)), (tagline(NULL, NULL, NULL), scaled(NULL, 1), ratio(1, 0), bucket(NULL, NULL, NULL))

-- case: insert-values-last-insert-id
-- then: SELECT LAST_INSERT_ID(), ROW_COUNT()
INSERT INTO w (tag) VALUES (tagline(2, 'li', 2))

-- case: update-where
UPDATE w SET tag = tagline(a, b, c) WHERE id > 2

-- case: update-all-four
UPDATE w SET tag = tagline(a, b, c), amount = scaled(x, n), r = ratio(c, x), k = bucket(a, b, x)

-- case: update-assignment-order
-- xfail: ASSIGNMENT_ORDER
UPDATE w SET a = a DIV 2, tag = tagline(a, b, c)

-- case: update-where-call
-- then: SELECT ROW_COUNT()
UPDATE w SET n = n - 1 WHERE scaled(x, n) > 0

-- case: update-order-limit
UPDATE w SET tag = tagline(a, b, c) ORDER BY id DESC LIMIT 2

-- case: update-multi-table
UPDATE w JOIN t ON t.id = w.id SET w.tag = tagline(t.a, t.s, t.c), w.k = bucket(t.a, w.b, t.x)

-- case: update-correlated-subquery
UPDATE w SET amount = (SELECT scaled(t.x, t.n) FROM t WHERE t.id = w.id)

-- case: update-constant
UPDATE w SET tag = tagline(9, 'const', 9) WHERE id = 1

-- case: update-own-column-as-argument
UPDATE w SET tag = tagline(a, tag, c)

-- case: delete-where-call
DELETE FROM w WHERE bucket(a, b, x) < 0

-- case: delete-order-limit
DELETE FROM w WHERE scaled(x, n) IS NOT NULL ORDER BY id LIMIT 2

-- case: delete-multi-table
DELETE w FROM w JOIN t ON t.id = w.id WHERE tagline(t.a, t.b, t.c) LIKE '15%'

-- case: delete-in-subquery
DELETE FROM w WHERE id IN (SELECT id FROM t WHERE ratio(c, x) < 0)

-- case: replace-select
REPLACE INTO w (id, a, b, tag, k) SELECT id, a, b, tagline(a, b, c), bucket(a, s, x) FROM t WHERE id <= 5

-- case: replace-values
REPLACE INTO w (id, tag) VALUES (1, tagline(1, 'r', 1))

-- case: insert-select-self
INSERT INTO w (a, b, tag) SELECT a, b, tagline(a, b, c) FROM w

-- case: insert-select-union
INSERT INTO w (tag, amount) SELECT tagline(a, b, c), scaled(x, n) FROM t WHERE id < 4 UNION ALL SELECT tagline(t_id, b, q), scaled(x, t_id) FROM u

-- case: insert-select-on-duplicate
INSERT INTO w (id, a, tag) SELECT id, a, tagline(a, b, c) FROM t WHERE id <= 3 ON DUPLICATE KEY UPDATE tag = VALUES(tag)

-- case: ctas-tagline
-- tables: made
CREATE TABLE made AS SELECT id, tagline(a, b, c) AS v FROM t

-- case: ctas-scaled
-- tables: made
CREATE TABLE made AS SELECT id, scaled(x, n) AS v FROM t

-- case: ctas-ratio
-- tables: made
CREATE TABLE made AS SELECT id, ratio(c, x) AS v FROM t

-- case: ctas-bucket
-- tables: made
-- xfail: INT_RESULT_TYPE
CREATE TABLE made AS SELECT id, bucket(a, s, x) AS v FROM t

-- case: ctas-unaliased
-- tables: made
CREATE TABLE made AS SELECT id, tagline(a, b, c), scaled(x, n), ratio(c, x) FROM t

-- case: ctas-constants
-- tables: made
CREATE TABLE made AS SELECT tagline(1, 'x', 1) AS tg, scaled(1.5, 2) AS sc, ratio(1, 3) AS ra, tagline(NULL, NULL, NULL) AS nn, scaled(NULL, 1) AS ns

-- case: ctas-constant-bucket
-- tables: made
-- xfail: INT_RESULT_TYPE
CREATE TABLE made AS SELECT bucket(1, 'x', 1) AS bu

-- case: ctas-qualified-from-other
-- where: other
-- tables: made
CREATE TABLE {db}.made AS SELECT id, {db}.tagline(a, b, c) AS v, {db}.scaled(x, n) AS s FROM {db}.t

-- case: update-qualified-from-other
-- where: other
UPDATE {db}.w SET tag = {db}.tagline(a, b, c), amount = {db}.scaled(x, n)

-- case: insert-qualified-from-other
-- where: other
INSERT INTO {db}.w (a, b, tag) SELECT k, s, {db}.tagline(k, s, id) FROM o
