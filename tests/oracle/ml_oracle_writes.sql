-- The differential oracle's writing statements (tests/oracle/test_ml_oracle.py): each statement runs
-- directly and through the proxy, and both must answer the same. {S} stands for
-- aws_comprehend_detect_sentiment, {C} for aws_comprehend_detect_sentiment_confidence.
-- The format: tests/support/sql_corpus.py.
-- A write is judged by its affected rows and its tables afterwards (w unless told).

-- == writes ==
-- case: insert-select
INSERT INTO w (txt, lang, lab, conf) SELECT txt, lang, {S}(txt, lang), {C}(txt, lang) FROM comments WHERE txt IS NOT NULL

-- case: insert-values-literals
INSERT INTO w (txt, lang, lab) VALUES ('Good', 'en', {S}('Good', 'en')), ('Bad', 'en', {S}('Bad', 'en'))

-- case: insert-values-last-insert-id
-- then: SELECT LAST_INSERT_ID(), ROW_COUNT()
INSERT INTO w (txt, lab, conf) VALUES ('x', {S}('x', 'en'), {C}('x', 'en'))

-- case: update-where
UPDATE w SET lab = {S}(txt, lang) WHERE id > 2

-- case: update-both
UPDATE w SET lab = {S}(txt, lang), conf = {C}(txt, lang)

-- case: update-assignment-order
-- xfail: ASSIGNMENT_ORDER
UPDATE w SET txt = UPPER(txt), lab = {S}(txt, 'en')

-- case: update-where-call
-- then: SELECT ROW_COUNT()
UPDATE w SET n = n + 1 WHERE {S}(txt, lang) = 'POSITIVE'

-- case: update-order-limit
UPDATE w SET lab = {S}(txt, 'en') ORDER BY id DESC LIMIT 2

-- case: update-multi-table
UPDATE w JOIN comments c ON c.id = w.id SET w.lab = {S}(c.txt, c.lang)

-- case: update-correlated-subquery
UPDATE w SET lab = (SELECT {S}(c.txt, 'en') FROM comments c WHERE c.id = w.id)

-- case: update-constant
UPDATE w SET lab = {S}('const', 'en') WHERE id = 1

-- case: update-expression-arg
UPDATE w SET conf = {C}(CONCAT(txt, n), 'en') WHERE n > 1

-- case: delete-where-call
DELETE FROM w WHERE {S}(txt, lang) = 'NEGATIVE'

-- case: delete-order-limit
DELETE FROM w WHERE {C}(txt, 'en') < 0.5 ORDER BY id LIMIT 2

-- case: delete-multi-table
DELETE w FROM w JOIN comments c ON c.id = w.id WHERE {S}(c.txt, 'en') = 'POSITIVE'

-- case: delete-in-subquery
DELETE FROM w WHERE id IN (SELECT id FROM comments WHERE {S}(txt, 'en') = 'MIXED')

-- case: replace-select
REPLACE INTO w (id, txt, lang, lab) SELECT id, txt, lang, {S}(txt, lang) FROM comments WHERE id <= 5

-- case: replace-values
REPLACE INTO w (id, txt, lab) VALUES (1, 'Good', {S}('Good', 'en'))

-- case: ctas
-- tables: made
CREATE TABLE made AS SELECT id, {S}(txt, lang) AS lab, {C}(txt, lang) AS conf FROM comments

-- case: ctas-unaliased
-- tables: made
CREATE TABLE made AS SELECT id, {S}(txt, 'en') FROM comments

-- case: ctas-constant
-- tables: made
CREATE TABLE made AS SELECT {S}('Good', 'en') AS lab, {C}('Good', 'en') AS conf, {S}('', 'en') AS nothing

-- case: insert-select-self
INSERT INTO w (txt, lab) SELECT txt, {S}(txt, 'en') FROM w

-- case: insert-on-duplicate-values
-- xfail: ODKU_VALUES
INSERT INTO w (id, txt, lab) VALUES (1, 'dup', 'x') ON DUPLICATE KEY UPDATE lab = {S}(VALUES(txt), 'en')

-- case: insert-on-duplicate-column
-- xfail: ODKU_COLUMN
INSERT INTO w (id, txt, lab) VALUES (1, 'dup', 'x') ON DUPLICATE KEY UPDATE lab = {S}(txt, 'en')

-- case: insert-select-on-duplicate
INSERT INTO w (id, txt, lab) SELECT id, txt, {S}(txt, 'en') FROM comments WHERE id <= 3 ON DUPLICATE KEY UPDATE lab = VALUES(lab)

-- case: insert-select-from-dual
INSERT INTO w (txt, lab) SELECT 'k', {S}('k', 'en') FROM DUAL

-- case: insert-select-union
INSERT INTO w (txt, lab) SELECT txt, {S}(txt, 'en') FROM replies WHERE id < 4 UNION ALL SELECT txt, {S}(txt, 'fr') FROM comments WHERE id > 20

-- case: create-view
-- tables: vv
-- xfail: VIEW
CREATE VIEW vv AS SELECT id, {S}(txt, 'en') AS lab FROM comments
