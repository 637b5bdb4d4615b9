-- The differential oracle's read statements (tests/oracle/test_ml_oracle.py): each statement runs
-- directly and through the proxy, and both must answer the same. {S} stands for
-- aws_comprehend_detect_sentiment, {C} for aws_comprehend_detect_sentiment_confidence.
-- The format: tests/support/sql_corpus.py.

-- == select list ==
-- case: sel-plain-lang-column
SELECT id, {S}(txt, lang) FROM comments

-- case: sel-both-aliased
-- ordered
SELECT id, {S}(txt, 'en') AS lab, {C}(txt, 'en') AS conf FROM comments ORDER BY id

-- case: sel-concat
SELECT id, CONCAT('[', {S}(txt, 'en'), ']') FROM comments

-- case: sel-case-simple
SELECT id, CASE {S}(txt, 'en') WHEN 'POSITIVE' THEN 1 WHEN 'NEGATIVE' THEN -1 ELSE 0 END AS score FROM comments

-- case: sel-case-searched
SELECT id, CASE WHEN {C}(txt, lang) > 0.5 THEN {S}(txt, lang) ELSE 'LOW' END FROM comments

-- case: sel-round-arith
SELECT id, ROUND({C}(txt, 'en') * 100, 2) AS pct FROM comments

-- case: sel-plus-column
SELECT id, {C}(txt, 'en') + n FROM comments

-- case: sel-if-alias-without-as
SELECT id, IF({S}(txt, 'en') = 'POSITIVE', 'yes', 'no') yes_no FROM comments

-- case: sel-compare-two-langs
SELECT id, {S}(txt, 'en') = {S}(txt, 'fr') FROM comments

-- case: sel-lower
SELECT id, LOWER({S}(txt, lang)) FROM comments

-- case: sel-coalesce
SELECT id, COALESCE({S}(txt, lang), 'none') FROM comments

-- case: sel-same-call-twice
SELECT id, {S}(txt, 'en'), {C}(txt, 'en'), {S}(txt, 'en') FROM comments

-- case: sel-star-and-call
SELECT *, {S}(txt, 'en') FROM comments

-- case: sel-qualified-star
SELECT c.*, {C}(c.txt, c.lang) conf FROM comments c

-- case: sel-uppercase-name
SELECT id, AWS_COMPREHEND_DETECT_SENTIMENT(txt, 'en') FROM comments

-- case: sel-space-before-paren
SELECT id, {S} (txt, 'en') FROM comments

-- case: sel-spacing-inside-call
SELECT id, {S}( txt ,  'en' ) FROM comments

-- case: sel-comment-inside-call
SELECT id, {S}(txt /* inner */, 'en') FROM comments

-- case: sel-comment-before-item
SELECT id, /* {S}(txt, 'en') */ {S}(txt, 'en') FROM comments

-- The server notes where an item's name starts once it has read the item's first token
-- after SELECT or a modifier, but right after a comma; it drops executable comments'
-- openers and ends from the text it names by.
-- case: sel-comment-before-first-item
SELECT /* request 12 */ {S}(txt, 'en') FROM comments

-- case: sel-hint-before-first-item
SELECT /*+ NO_RANGE_OPTIMIZATION(comments) */ {S}(txt, 'en') FROM comments

-- case: sel-line-comment-before-first-item
SELECT DISTINCT -- first
  {S}(txt, 'en') FROM comments

-- case: sel-line-comment-after-comma
SELECT id, # the label
  {S}(txt, 'en') FROM comments

-- case: sel-executable-comment-item
SELECT /*!50000 {S}(txt, 'en') */ FROM comments

-- case: sel-executable-comment-after-comma
SELECT id, /*!50000 {S}(txt, 'en')*/ FROM comments

-- case: sel-mariadb-executable-comment-item
SELECT /*M!100000 {S}(txt, 'en') */ FROM comments

-- MariaDB's greeting says 5.5.5-10.x: the comment is dated by 10.x, so it runs.
-- case: sel-executable-comment-dated-after-5.5.5
SELECT /*!50600 {S}(txt, 'en') */ FROM comments

-- MariaDB skips MySQL 5.7+'s executable comments (on MySQL 8 this one runs).
-- case: sel-executable-comment-mysql-57
SELECT id /*!50700 , {S}(txt, 'en') */ FROM comments

-- case: sel-executable-comment-too-new
SELECT id /*!999999 , {S}(txt, 'en') */ FROM comments

-- case: sel-executable-comment-inside-item
SELECT {S}(txt /*!50000 , 'en' */) FROM comments

-- case: sel-executable-comment-around-argument
SELECT id, {S}(/*!50000 txt*/, 'en') FROM comments

-- case: sel-executable-comments-in-two-items
SELECT /*!50000 {S}(txt, 'en'), {C}(txt, 'en')*/, {C}(/*M!100000 txt, */ 'en') FROM comments

-- case: sel-emoji-in-unaliased-item
SELECT id, CONCAT({S}(txt, 'en'), '😀') FROM comments

-- case: sel-emoji-in-aliased-item
SELECT id, CONCAT({S}(txt, 'en'), '😀') AS e FROM comments

-- case: sel-field-order
-- ordered
SELECT id FROM comments ORDER BY FIELD({S}(txt, 'en'), 'POSITIVE', 'NEGATIVE', 'NEUTRAL', 'MIXED'), id

-- case: sel-name-in-string
SELECT id, '{S}(txt)' AS s, {S}(txt, 'en') FROM comments

-- case: sel-quoted-alias
SELECT id, {S}(txt, 'en') AS `odd ``name`` ` FROM comments

-- case: sel-json-object
SELECT id, JSON_OBJECT('lab', {S}(txt, 'en')) FROM comments

-- case: sel-charset-collation
SELECT CHARSET({S}(txt, 'en')), COLLATION({S}(txt, 'en')) FROM comments WHERE id = 1

-- case: sel-six-sites
SELECT id, {S}(txt, 'en'), {S}(txt, 'fr'), {S}(txt, 'de'), {C}(txt, 'en'), {C}(txt, 'fr'), {C}(txt, 'de') FROM comments

-- case: sel-multiline-comments
SELECT id, -- a comment {S}(x)
 {S}(txt, 'en') # another
 FROM comments

-- case: sel-sql-no-cache
SELECT SQL_NO_CACHE {S}(txt, 'en') FROM comments

-- case: sel-straight-join-modifier
SELECT STRAIGHT_JOIN {S}(txt, 'en') FROM comments

-- case: sel-distinct-first-item
SELECT DISTINCT {S}(txt, 'en') FROM comments

-- case: sel-trailing-semicolon
SELECT id, {S}(txt, 'en') FROM comments;

-- case: sel-long-item-name
SELECT CONCAT({S}(txt, 'en'), 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') FROM comments WHERE id < 4


-- == arguments ==
-- case: arg-concat
SELECT id, {S}(CONCAT(txt, '!'), 'en') FROM comments

-- case: arg-upper-lang-column
SELECT id, {S}(UPPER(txt), lang) FROM comments

-- case: arg-coalesce-both
SELECT id, {S}(COALESCE(txt, 'missing'), COALESCE(lang, 'en')) FROM comments

-- case: arg-concat-columns
SELECT id, {S}(CONCAT(grp, ':', n), 'en') FROM comments

-- case: arg-integer
SELECT id, {S}(n, 'en') FROM comments

-- case: arg-decimal
SELECT id, {C}(n * 1.5, 'en') FROM comments

-- case: arg-trim
SELECT id, {C}(TRIM(txt), 'en') FROM comments

-- case: arg-substring
SELECT id, {S}(SUBSTRING(txt, 1, 3), 'en') FROM comments

-- case: arg-convert-latin1
SELECT id, {S}(CONVERT(txt USING latin1), 'en') FROM comments WHERE id NOT IN (10, 12, 18)

-- case: arg-binary
SELECT id, {S}(CAST(txt AS BINARY), 'en') FROM comments

-- case: arg-collate
SELECT id, {S}(txt COLLATE utf8mb4_bin, 'en') FROM comments

-- case: arg-lang-if
SELECT id, {S}(REPLACE(txt, 'o', '0'), IF(grp = 'a', 'en', 'fr')) FROM comments

-- case: arg-lang-case
SELECT id, {S}(txt, CASE grp WHEN 'a' THEN 'en' WHEN 'b' THEN 'de' ELSE 'es' END) FROM comments

-- case: arg-scalar-subquery
SELECT id, {S}((SELECT r.txt FROM replies r WHERE r.id = 1), 'en') AS lab FROM comments

-- case: arg-correlated-subquery
SELECT id, {S}((SELECT MAX(r.txt) FROM replies r WHERE r.comment_id = c.id), 'en') FROM comments c

-- case: arg-parenthesised
SELECT id, {S}((txt), ('en')) FROM comments

-- case: arg-constant-text-column-lang
SELECT id, {S}('Good', lang) FROM comments


-- == constants ==
-- case: const-both
SELECT {S}('Good', 'en'), {C}('Good', 'en')

-- case: const-case-variants
SELECT {S}('Good', 'en') AS a, {S}('GOOD', 'en') AS b, {S}('good', 'en') AS c, {C}('Good', 'en') AS d, {C}('GOOD', 'en') AS e

-- case: const-null-empty
SELECT {S}(NULL, 'en'), {C}(NULL, 'en'), {S}('', 'en'), {S}('x', NULL)

-- case: const-quotes-backslashes
SELECT {S}('It''s a \\ "quote"', 'en')

-- case: const-multibyte
SELECT {S}('emoji 😀', 'en'), {C}('日本語', 'ja')

-- case: const-concat
SELECT {S}(CONCAT('Go', 'od'), 'en')

-- case: const-hex
SELECT {S}(X'476F6F64', 'en')

-- case: const-in-from-query
SELECT id, {S}('constant', 'en') AS k FROM comments

-- case: const-vs-row
SELECT id FROM comments WHERE {S}('Good', 'en') = {S}(txt, 'en')

-- case: const-user-variable
-- setup: SET @v = 'Good'
SELECT {S}(@v, 'en')

-- case: const-from-dual
SELECT {C}('Good', 'en') FROM DUAL

-- case: const-uppercase-lang
SELECT {S}('Good', 'EN'), {S}('Good', 'zh-tw')

-- case: const-values
-- xfail: STANDALONE_VALUES
VALUES ({S}('Good', 'en'), {C}('Good', 'en'))

-- case: const-derived-literals
SELECT {S}(t, 'en') FROM (SELECT 'Good' AS t UNION ALL SELECT 'Bad') d

-- case: const-set-variable
-- then: SELECT @x
SET @x = {S}('Good', 'fr')


-- == where ==
-- case: where-equals
SELECT id FROM comments WHERE {S}(txt, 'en') = 'POSITIVE'

-- case: where-and-ml-free
SELECT id FROM comments WHERE grp = 'a' AND {S}(txt, lang) <> 'NEGATIVE'

-- case: where-or
SELECT id FROM comments WHERE grp = 'b' OR {C}(txt, 'en') > 0.5

-- case: where-in-list
SELECT id FROM comments WHERE {S}(txt, 'en') IN ('POSITIVE', 'MIXED') AND n > 3

-- case: where-between
SELECT id FROM comments WHERE {C}(txt, 'en') BETWEEN 0.2 AND 0.7

-- case: where-null-safe
SELECT id FROM comments WHERE NOT ({S}(txt, 'en') <=> 'NEUTRAL')

-- case: where-is-null
SELECT id FROM comments WHERE {S}(txt, 'en') IS NULL

-- case: where-case-insensitive
SELECT id FROM comments WHERE {S}(txt, 'en') = 'positive'

-- case: where-like
SELECT id FROM comments WHERE {S}(txt, 'en') LIKE 'NEG%'

-- case: where-ci-text-filter
SELECT id, txt, {S}(txt, 'en') FROM comments WHERE txt = 'good'

-- case: where-nondeterministic-conjunct
SELECT id FROM comments WHERE n > 5 AND RAND() < 2 AND {S}(txt, 'en') <> 'MIXED'

-- case: where-two-calls
SELECT id FROM comments WHERE id < 10 AND {C}(txt, 'en') < {C}(txt, 'fr')

-- case: where-call-vs-call-of-expr
SELECT id FROM comments WHERE {S}(txt, 'en') = {S}(UPPER(txt), 'en')

-- case: where-row-constructor
SELECT id FROM comments WHERE (grp, {S}(txt, 'en')) IN (('a', 'POSITIVE'), ('b', 'NEGATIVE'), ('c', 'MIXED'))

-- case: where-warnings
-- then: SHOW WARNINGS
SELECT id, {S}(txt, 'en') FROM comments WHERE n = 'abc' OR n = 3


-- == grouping ==
-- case: group-by-alias
SELECT {S}(txt, 'en') AS lab, COUNT(*) FROM comments GROUP BY lab

-- case: group-by-call
SELECT {S}(txt, 'en'), COUNT(*) FROM comments GROUP BY {S}(txt, 'en')

-- case: having-sum
SELECT grp, COUNT(*) FROM comments GROUP BY grp HAVING SUM({S}(txt, 'en') = 'POSITIVE') > 0

-- case: agg-avg-case
SELECT grp, AVG(CASE {S}(txt, lang) WHEN 'POSITIVE' THEN 1 WHEN 'NEGATIVE' THEN -1 ELSE 0 END) AS score FROM comments GROUP BY grp

-- case: agg-count-distinct
SELECT COUNT(DISTINCT {S}(txt, 'en')) FROM comments

-- case: agg-max-min-sum
SELECT grp, MAX({C}(txt, 'en')), MIN({C}(txt, 'en')), SUM({C}(txt, 'en')) FROM comments GROUP BY grp

-- case: agg-group-concat
SELECT GROUP_CONCAT({S}(txt, 'en') ORDER BY id SEPARATOR ',') FROM comments

-- case: agg-argument-is-aggregate
SELECT grp, {S}(GROUP_CONCAT(txt ORDER BY id), 'en') FROM comments GROUP BY grp

-- case: agg-max-argument-having
SELECT grp, {S}(MAX(txt), 'en') AS lab FROM comments GROUP BY grp HAVING COUNT(*) > 1

-- case: having-max-conf
SELECT grp, COUNT(*) FROM comments GROUP BY grp HAVING MAX({C}(txt, 'en')) > 0.3

-- case: group-by-column-and-call
SELECT lang, {S}(txt, lang), COUNT(*) FROM comments GROUP BY lang, {S}(txt, lang)

-- case: group-with-rollup
SELECT {S}(txt, 'en') AS lab, SUM({C}(txt, 'en')) FROM comments GROUP BY lab WITH ROLLUP

-- case: having-call-on-group-column
SELECT grp FROM comments GROUP BY grp HAVING {S}(grp, 'en') <> 'MIXED'

-- case: agg-sum-if
SELECT SUM(IF({S}(txt, 'en') = 'NEGATIVE', 1, 0)) AS neg, COUNT(*) FROM comments WHERE txt IS NOT NULL

-- case: group-by-ordinal
-- ordered
SELECT {S}(txt, 'en') AS lab, COUNT(*) AS c FROM comments GROUP BY 1 ORDER BY c DESC, lab

-- case: having-alias-of-call
SELECT grp, {S}(grp, 'en') lab FROM comments GROUP BY grp HAVING lab = 'POSITIVE'

-- case: agg-group-concat-ordered-by-call
SELECT grp, GROUP_CONCAT(id ORDER BY {C}(txt, 'en'), id) FROM comments GROUP BY grp

-- case: agg-two-aggregate-arguments
SELECT grp, {S}(MIN(txt), 'en'), {C}(CONCAT(MAX(txt), 'x'), 'en') FROM comments GROUP BY grp

-- case: having-alias-without-group
SELECT id, {S}(txt, 'en') AS lab FROM comments HAVING lab <> 'MIXED'


-- == ordering ==
-- case: distinct-call
SELECT DISTINCT {S}(txt, lang) AS lab FROM comments

-- case: distinct-text-and-call
SELECT DISTINCT txt, {S}(txt, 'en') FROM comments

-- case: order-by-call
-- ordered
SELECT id, txt FROM comments ORDER BY {S}(txt, 'en'), id

-- case: order-desc-limit
-- ordered
SELECT id FROM comments ORDER BY {C}(txt, lang) DESC, id LIMIT 5

-- case: order-alias-limit-offset
-- ordered
SELECT id, {C}(txt, 'en') AS c FROM comments ORDER BY c, id LIMIT 3 OFFSET 2

-- case: order-two-calls-limit-comma
-- ordered
SELECT id FROM comments ORDER BY {S}(txt, 'en') DESC, {C}(txt, 'en'), id LIMIT 4, 4

-- case: order-by-ordinal
-- ordered
SELECT id, {S}(txt, 'en') FROM comments ORDER BY 2, 1

-- case: order-by-select-alias
-- ordered
SELECT id, {S}(txt, 'en') AS lab FROM comments ORDER BY lab, id

-- case: limit-zero
SELECT id, {S}(txt, 'en') FROM comments LIMIT 0

-- case: empty-where
SELECT {S}(txt, 'en') FROM comments WHERE 1 = 0

-- case: found-rows
-- ordered
-- then: SELECT FOUND_ROWS()
SELECT SQL_CALC_FOUND_ROWS id FROM comments WHERE {S}(txt, 'en') <> 'MIXED' ORDER BY id LIMIT 2

-- case: for-update
SELECT id, {S}(txt, lang) FROM comments WHERE id < 5 FOR UPDATE


-- == joins ==
-- case: join-inner
SELECT c.id, r.id, {S}(r.txt, c.lang) FROM comments c JOIN replies r ON r.comment_id = c.id

-- case: join-left-null-side
SELECT c.id, r.id, {S}(r.txt, 'en') FROM comments c LEFT JOIN replies r ON r.comment_id = c.id

-- case: join-call-in-on
SELECT c.id, r.id FROM comments c JOIN replies r ON r.comment_id = c.id AND {S}(r.txt, 'en') = {S}(c.txt, 'en')

-- case: join-left-call-in-on
SELECT c.id, r.id FROM comments c LEFT JOIN replies r ON r.comment_id = c.id AND {S}(r.txt, 'en') <> 'NEGATIVE'

-- case: join-lang-from-other-table
SELECT c.id, l.name, {S}(c.txt, l.code) FROM comments c JOIN langs l ON l.code = c.lang

-- case: join-right
SELECT c.id, r.id FROM comments c RIGHT JOIN replies r ON r.comment_id = c.id WHERE {S}(r.txt, 'en') <> 'MIXED'

-- case: join-self
SELECT a.id, b.id FROM comments a JOIN comments b ON a.id < b.id AND a.grp = b.grp WHERE {S}(a.txt, 'en') = {S}(b.txt, 'en')

-- case: join-argument-from-both-sides
SELECT c.id, r.id, {S}(CONCAT(c.txt, r.txt), 'en') FROM comments c JOIN replies r ON r.comment_id = c.id

-- case: join-comma
SELECT c.id FROM comments c, replies r WHERE r.comment_id = c.id AND {C}(r.txt, 'en') > {C}(c.txt, 'en')

-- case: join-derived-with-call
SELECT c.id, x.lab FROM comments c JOIN (SELECT comment_id, {S}(txt, 'en') AS lab FROM replies) x ON x.comment_id = c.id

-- case: join-on-only-calls
SELECT c.id, r.id FROM comments c JOIN replies r ON {S}(r.txt, 'en') = {S}(c.txt, 'en')


-- == subqueries ==
-- case: subq-scalar-uncorrelated
SELECT id, (SELECT {S}(r.txt, 'en') FROM replies r WHERE r.id = 1) AS first_lab FROM comments

-- case: subq-in
SELECT id FROM comments WHERE id IN (SELECT comment_id FROM replies WHERE {S}(txt, 'en') = 'POSITIVE')

-- case: subq-exists-correlated
SELECT id FROM comments c WHERE EXISTS (SELECT 1 FROM replies r WHERE r.comment_id = c.id AND {S}(r.txt, 'en') <> 'NEGATIVE')

-- case: subq-scalar-correlated-count
SELECT id, (SELECT COUNT(*) FROM replies r WHERE r.comment_id = c.id AND {S}(r.txt, 'en') = 'POSITIVE') AS pos FROM comments c

-- case: subq-outer-column-as-input
SELECT id, (SELECT {S}(c.txt, r.lang) FROM replies r WHERE r.id = 2) FROM comments c

-- case: subq-compare-to-scalar
SELECT id FROM comments WHERE {S}(txt, 'en') = (SELECT {S}(txt, 'en') FROM replies WHERE id = 1)

-- case: subq-in-calls-both-sides
SELECT id FROM comments WHERE {S}(txt, 'en') IN (SELECT {S}(txt, lang) FROM replies)

-- case: subq-not-exists-call-outside
SELECT id FROM comments c WHERE NOT EXISTS (SELECT 1 FROM replies r WHERE r.comment_id = c.id) AND {S}(c.txt, 'en') IS NOT NULL

-- case: subq-avg-uncorrelated
SELECT id FROM comments WHERE {C}(txt, 'en') > (SELECT AVG({C}(txt, 'en')) FROM comments)

-- case: subq-all-correlated
SELECT id FROM comments c WHERE {C}(c.txt, 'en') >= ALL (SELECT {C}(c2.txt, 'en') FROM comments c2 WHERE c2.grp = c.grp)


-- == derived and ctes ==
-- case: derived-group
SELECT lab, COUNT(*) FROM (SELECT {S}(txt, 'en') AS lab FROM comments) d GROUP BY lab

-- case: derived-outer-call
SELECT d.id, {S}(d.t, 'en') FROM (SELECT id, UPPER(txt) AS t FROM comments WHERE grp <> 'c') d

-- case: derived-limited-inner-call
-- ordered
SELECT * FROM (SELECT id, {S}(txt, lang) AS lab FROM comments ORDER BY id LIMIT 5) d ORDER BY id

-- case: derived-limited-outer-call
SELECT d.id, {C}(d.txt, 'en') FROM (SELECT id, txt FROM comments ORDER BY id DESC LIMIT 4) d

-- case: derived-calls-inside-and-outside
SELECT id, lab, {C}(txt, 'en') FROM (SELECT id, txt, {S}(txt, 'en') AS lab FROM comments) d

-- case: derived-unaliased-item
SELECT * FROM (SELECT id, {S}(txt, 'en') FROM comments) d

-- case: derived-filter-on-result
SELECT x.lab FROM (SELECT {S}(txt, 'en') lab FROM comments WHERE id < 5) x WHERE x.lab <> 'MIXED'

-- case: cte-plain
WITH p AS (SELECT id, txt FROM comments WHERE grp = 'a') SELECT id, {S}(txt, 'en') FROM p

-- case: cte-call-inside
WITH s AS (SELECT id, {S}(txt, 'en') AS lab FROM comments) SELECT lab, COUNT(*) FROM s GROUP BY lab

-- case: cte-recursive-outer-call
WITH RECURSIVE r (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < 6) SELECT k, {S}(CONCAT('text ', k), 'en') FROM r

-- case: cte-recursive-strings
WITH RECURSIVE r (k, t) AS (SELECT 1, CAST('a' AS CHAR(20)) UNION ALL SELECT k + 1, CONCAT(t, 'b') FROM r WHERE k < 5) SELECT k, t, {C}(t, 'en') FROM r

-- case: cte-calls-inside-and-outside
WITH s AS (SELECT id, txt, {S}(txt, 'en') AS lab FROM comments) SELECT id, lab, {C}(txt, 'en') FROM s

-- case: cte-read-in-subquery
WITH p AS (SELECT id, txt FROM comments WHERE grp = 'a') SELECT id FROM comments WHERE id IN (SELECT id FROM p WHERE {S}(txt, 'en') = 'NEGATIVE')

-- case: cte-read-in-union-branches
WITH p AS (SELECT id, txt FROM comments WHERE grp = 'a') SELECT {S}(txt, 'en') FROM p UNION ALL SELECT {C}(txt, 'en') FROM p

-- case: cte-chained
WITH a AS (SELECT id, txt FROM comments), b AS (SELECT id, txt FROM a WHERE id > 10) SELECT id, {S}(txt, 'en') FROM b

-- case: cte-recursive-call-in-body
-- xfail: RECURSIVE_BODY
WITH RECURSIVE r (k, lab) AS (SELECT 1, {S}('seed', 'en') UNION ALL SELECT k + 1, {S}(CONCAT('seed', k), 'en') FROM r WHERE k < 4) SELECT * FROM r


-- == set operations ==
-- case: union-distinct
SELECT {S}(txt, 'en') FROM comments UNION SELECT {S}(txt, 'en') FROM replies

-- case: union-all
SELECT id, {S}(txt, 'en') AS lab FROM comments UNION ALL SELECT id, {S}(txt, lang) FROM replies

-- case: union-order-limit
-- ordered
SELECT id FROM comments WHERE {S}(txt, 'en') = 'POSITIVE' UNION SELECT id FROM replies WHERE {S}(txt, 'en') = 'NEGATIVE' ORDER BY id LIMIT 5

-- case: union-in-derived
SELECT lab, COUNT(*) FROM (SELECT {S}(txt, 'en') lab FROM comments UNION ALL SELECT {S}(txt, 'en') FROM replies) u GROUP BY lab

-- case: union-row-and-constant
SELECT {S}(txt, 'en') FROM comments WHERE id = 1 UNION ALL SELECT {S}('Good', 'en')

-- case: union-constants
SELECT {S}('Good', 'en') UNION SELECT {S}('Bad', 'en')

-- case: union-global-order-by-call
-- ordered
SELECT id, txt FROM comments UNION ALL SELECT id, txt FROM replies ORDER BY {S}(txt, 'en'), id

-- case: intersect
SELECT id FROM comments INTERSECT SELECT comment_id FROM replies WHERE {S}(txt, 'en') <> 'MIXED'

-- case: except
SELECT id FROM comments WHERE {S}(txt, 'en') <> 'NEUTRAL' EXCEPT SELECT comment_id FROM replies


-- == windows and misc ==
-- case: window-partition-by-call
SELECT id, ROW_NUMBER() OVER (PARTITION BY {S}(txt, 'en') ORDER BY id) FROM comments

-- case: window-running-sum
SELECT id, SUM({C}(txt, 'en')) OVER (ORDER BY id) FROM comments

-- case: window-lag
SELECT id, LAG({S}(txt, 'en')) OVER (ORDER BY id) FROM comments

-- case: window-rank-by-call
SELECT id, RANK() OVER (ORDER BY {C}(txt, 'en') DESC) AS r FROM comments

-- case: capture-column-named-v
SELECT id, {S}(v, 'en') FROM capture

-- case: capture-columns-named-k0-k1
SELECT id, {S}(k0, k1) FROM capture

-- case: capture-table-alias-mlr
SELECT id, {S}(_mlr.txt, 'en') FROM comments _mlr

-- case: select-into-variable
-- then: SELECT @lab
SELECT {S}(txt, 'en') INTO @lab FROM comments WHERE id = 3

-- case: set-variable-from-subquery
-- then: SELECT @x
SET @x = (SELECT {S}(txt, 'en') FROM comments WHERE id = 4)

-- case: sql-prepare-execute
-- xfail: SQL_PREPARE
-- setup: PREPARE st FROM 'SELECT id, {S}(txt, ''en'') FROM comments'
EXECUTE st
