-- The alias oracle's read statements (tests/oracle/test_alias_oracle.py): each statement runs on
-- the stored functions directly and on the alias functions through the proxy, on both
-- answer paths, and both must answer the same. {db} is the side's database.
-- The format: tests/support/sql_corpus.py.

-- == select list ==
-- case: sel-all-four
SELECT id, tagline(a, b, c), scaled(x, n), ratio(c, x), bucket(a, s, x) FROM t

-- case: sel-all-four-aliased-ordered
-- ordered
SELECT id, tagline(a, b, c) AS tg, scaled(x, n) AS sc, ratio(c, x) AS ra, bucket(a, s, x) AS bu FROM t ORDER BY id

-- case: sel-concat
SELECT id, CONCAT('[', tagline(a, b, c), ']') FROM t

-- case: sel-case
SELECT id, CASE WHEN bucket(a, s, x) > 0 THEN 'pos' WHEN bucket(a, s, x) < 0 THEN 'neg' ELSE 'zero' END AS sign FROM t

-- case: sel-arithmetic
SELECT id, scaled(x, n) * 2 + 1, bucket(a, s, x) DIV 7 FROM t

-- case: sel-double-arithmetic
SELECT id, ratio(c, x) * 100, -ratio(x, 4) FROM t

-- case: sel-same-call-twice
SELECT id, tagline(a, b, c), scaled(x, n), tagline(a, b, c) FROM t

-- case: sel-star-and-calls
SELECT *, bucket(a, s, x), scaled(x, n) FROM t

-- case: sel-qualified-star
SELECT t1.*, tagline(t1.a, t1.b, t1.c) tg FROM t t1

-- case: sel-uppercase-name
SELECT id, TAGLINE(a, b, c), Scaled(x, n) FROM t

-- case: sel-backticked-name
SELECT id, `tagline`(a, b, c) AS v FROM t

-- case: sel-space-before-paren
SELECT id, tagline (a, b, c) AS v FROM t

-- case: sel-spacing-inside-call
SELECT id, bucket(  a ,s,   x ) AS v FROM t

-- case: sel-comment-inside-call
SELECT id, tagline(a /* one */, b, /* two */ c) FROM t

-- case: sel-comment-before-item
SELECT id, /* tagline(a, b, c) */ tagline(a, b, c) FROM t

-- case: sel-name-in-string
SELECT id, 'tagline(a, b, c)' AS s, scaled(x, n) FROM t

-- case: sel-quoted-alias
SELECT id, ratio(c, x) AS `odd ``name`` ` FROM t

-- case: sel-json-object
SELECT id, JSON_OBJECT('t', tagline(a, b, c), 's', CONCAT(scaled(x, n))) FROM t

-- case: sel-emoji-in-item
SELECT id, CONCAT(tagline(a, b, c), '😀') AS e FROM t

-- case: sel-charset-collation
SELECT CHARSET(tagline(a, b, c)), COLLATION(tagline(a, b, c)) FROM t WHERE id = 1

-- case: sel-coercibility
-- xfail: COERCIBILITY
SELECT COERCIBILITY(tagline(a, b, c)), COERCIBILITY(scaled(x, n)) FROM t WHERE id = 1

-- case: sel-nested-calls
-- xfail: NESTED_CALLS
SELECT id, tagline(bucket(a, s, x), b, ratio(c, x)) FROM t

-- case: sel-nested-same-function
-- xfail: NESTED_CALLS
SELECT id, scaled(scaled(x, 3), 2) FROM t WHERE ABS(x) < 1000

-- case: sel-one-function-many-argument-sets
SELECT id, tagline(a, b, c), tagline(a, s, c), tagline(1, b, 2.5), tagline(a, NULL, c) FROM t

-- case: sel-distinct
SELECT DISTINCT bucket(a, s, x) FROM t

-- case: sel-distinct-text
SELECT DISTINCT tagline(a, b, c) FROM t

-- case: sel-trailing-semicolon
SELECT id, scaled(x, n) FROM t;

-- case: sel-sql-no-cache
SELECT SQL_NO_CACHE id, tagline(a, b, c) FROM t

-- case: sel-multiline-comments
SELECT id, -- tagline(x)
 bucket(a, s, x) # z
 FROM t

-- case: sel-length-of-answer
SELECT id, CHAR_LENGTH(tagline(a, b, c)) FROM t


-- == arguments ==
-- case: arg-expressions
SELECT id, tagline(a DIV 2 + 1, CONCAT(b, '!'), c / 4) FROM t

-- case: arg-coalesce
SELECT id, tagline(COALESCE(a, -1), COALESCE(b, 'none'), COALESCE(c, 0)) FROM t

-- case: arg-constant-and-column
SELECT id, tagline(7, b, 1.5), scaled(x, 3) FROM t

-- case: arg-null-and-column
SELECT id, bucket(NULL, s, NULL), scaled(NULL, n) FROM t

-- case: arg-integer-as-text
SELECT id, tagline(CAST(a AS CHAR), b, c) FROM t

-- case: arg-decimal-as-text
SELECT id, scaled(CONCAT(x), n) FROM t

-- case: arg-double-as-text
SELECT id, ratio(CONCAT(c), 3) FROM t

-- case: arg-decimal-into-double
SELECT id, ratio(x, 3), ratio(3, x) FROM t

-- case: arg-double-into-decimal
SELECT id, scaled(c, n), bucket(a, s, c) FROM t WHERE ABS(c) < 1e6

-- case: arg-bigint-into-double
SELECT id, ratio(n, 7), ratio(a, n) FROM t

-- case: arg-int-into-varchar
SELECT id, tagline(a, a, c), bucket(a, n, x) FROM t

-- case: arg-varchar-into-int
SELECT id, tagline(LENGTH(b), grp, n DIV 1e17) FROM t

-- case: arg-decimal-into-int
SELECT id, tagline(x, b, c) FROM t WHERE ABS(x) < 1e6

-- case: arg-double-into-int
SELECT id, bucket(c, s, x) FROM t WHERE ABS(c) < 1e6

-- case: arg-scalar-subquery
SELECT id, tagline((SELECT MAX(a) FROM t WHERE a < 1000), b, c) FROM t

-- case: arg-correlated-subquery
SELECT id, tagline(a, (SELECT MAX(u.b) FROM u WHERE u.t_id = t.id), c) FROM t

-- case: arg-collate-bin
SELECT id, tagline(a, b COLLATE utf8mb4_bin, c) FROM t

-- case: arg-binary
SELECT id, tagline(a, CAST(b AS BINARY), c) FROM t

-- case: arg-latin1
SELECT id, tagline(a, lb, c), bucket(a, lb, x) FROM t

-- case: arg-case
SELECT id, bucket(CASE grp WHEN 'a' THEN 1 WHEN 'b' THEN 2 ELSE NULL END, s, x) FROM t

-- case: arg-user-variable
-- setup: SET @k = 11
SELECT id, tagline(@k, b, c) FROM t

-- case: arg-parenthesised
SELECT id, scaled((x), (n)) FROM t

-- case: arg-if
SELECT id, ratio(IF(grp = 'a', c, NULL), 2) FROM t

-- case: arg-hex-string
SELECT id, tagline(a, X'C3A92764', c) FROM t


-- == constants ==
-- case: const-all-four
SELECT tagline(1, 'x', 2.5), scaled(1.5, 3), ratio(1, 3), bucket(1, 'ab', 3.5)

-- case: const-nulls
SELECT tagline(NULL, NULL, NULL), scaled(NULL, 1), scaled(1, NULL), ratio(1, 0), ratio(NULL, 2), bucket(NULL, NULL, NULL)

-- case: const-hostile-strings
SELECT tagline(1, 'It''s \\ "q"', 1), tagline(2, '😀🎉', 2), tagline(3, '', 3), tagline(4, 'nul\0byte', 4), tagline(5, 'ab  ', 5), bucket(6, 'ß', 6)

-- case: const-extremes
SELECT tagline(-2147483648, 'x', 1e300), tagline(2147483647, 'y', -1.7976931348623157e308), scaled(99999999.99, 99), scaled(-99999999.99, -9223372036854775808), ratio(1.7976931348623157e308, 2), ratio(5e-324, 1), bucket(2147483647, 'x', 99999999.99)

-- case: const-negative-zero
SELECT scaled(-1.5, 0), ratio(-0.0, 1), ratio(-0e0, 1), tagline(0, '', -0e0)

-- case: const-rounded-arguments
SELECT scaled(1.005, 1), scaled(2.675e0, 1), tagline(2.5e0, 'x', 1)

-- case: const-hex
SELECT tagline(1, X'C3A9', 1)

-- case: const-from-dual
SELECT bucket(1, 'x', 2) FROM DUAL

-- case: const-in-from-query
SELECT id, tagline(1, 'k', 1) AS k FROM t

-- case: const-vs-row
SELECT id FROM t WHERE bucket(1, 'x', 0) < bucket(a, s, x)

-- case: const-user-variables
-- setup: SET @x = 2.5, @n = -3
SELECT scaled(@x, @n)

-- case: const-set-variable
-- then: SELECT @v
SET @v = tagline(1, 'v', 1)

-- case: const-derived-literals
SELECT tagline(k, t, 1) FROM (SELECT 1 AS k, 'a' AS t UNION ALL SELECT 2, 'b') d

-- case: const-expression-arguments
SELECT tagline(2 * 3, CONCAT('a', 'b'), 1 / 8)


-- == where ==
-- case: where-equals-text
SELECT id FROM t WHERE tagline(a, b, c) = '15:olléh#5:10'

-- case: where-case-insensitive
SELECT id FROM t WHERE tagline(a, b, c) = '15:OLLÉH#5:10'

-- case: where-binary-collation
SELECT id FROM t WHERE tagline(a, b, c) = _utf8mb4'15:OLLÉH#5:10' COLLATE utf8mb4_bin

-- case: where-and-ml-free
SELECT id FROM t WHERE grp = 'a' AND scaled(x, n) > 0

-- case: where-or
SELECT id FROM t WHERE grp = 'b' OR bucket(a, s, x) < 0

-- case: where-in-list
SELECT id FROM t WHERE bucket(a, s, x) IN (5002, 999, 2002) AND id > 0

-- case: where-between
SELECT id FROM t WHERE ratio(c, x) BETWEEN -1 AND 1

-- case: where-is-null
SELECT id FROM t WHERE scaled(x, n) IS NULL

-- case: where-null-safe
SELECT id FROM t WHERE NOT (ratio(c, x) <=> NULL)

-- case: where-like
SELECT id FROM t WHERE tagline(a, b, c) LIKE '%null%'

-- case: where-like-escape
SELECT id FROM t WHERE tagline(a, b, c) LIKE '%\_%'

-- case: where-two-calls
SELECT id FROM t WHERE scaled(x, n) < scaled(x, 3)

-- case: where-decimal-equality
SELECT id FROM t WHERE scaled(x, n) = 10.5 OR scaled(x, n) = 0

-- case: where-row-constructor
SELECT id FROM t WHERE (grp, bucket(a, s, x) > 0) IN (('a', 1), ('b', 0))

-- case: where-utf8mb4-bin-column
SELECT id FROM t WHERE tagline(a, b, c) = CONVERT(b USING utf8mb4) COLLATE utf8mb4_bin

-- case: where-latin1-column
-- xfail: LATIN1_MIX
SELECT id FROM t WHERE tagline(a, b, c) = lb

-- case: where-nondeterministic-conjunct
SELECT id FROM t WHERE a > 0 AND RAND() < 2 AND bucket(a, s, x) > 0


-- == grouping ==
-- case: group-by-alias
SELECT bucket(a, s, x) DIV 1000 AS k, COUNT(*) FROM t GROUP BY k

-- case: group-by-call
SELECT tagline(a, b, c), COUNT(*) FROM t GROUP BY tagline(a, b, c)

-- case: group-by-column-and-call
SELECT grp, scaled(x, 2), COUNT(*) FROM t GROUP BY grp, scaled(x, 2)

-- case: having-sum
SELECT grp, COUNT(*) FROM t GROUP BY grp HAVING SUM(scaled(x, n)) > 0

-- case: agg-sum-min-max
SELECT grp, SUM(scaled(x, n)), MIN(ratio(c, x)), MAX(bucket(a, s, x)) FROM t GROUP BY grp

-- case: agg-count-distinct
SELECT COUNT(DISTINCT tagline(a, b, c)) FROM t

-- case: agg-group-concat
SELECT GROUP_CONCAT(tagline(a, b, c) ORDER BY id SEPARATOR '|') FROM t

-- case: agg-arguments-are-aggregates
SELECT grp, tagline(MAX(a), MAX(grp), COUNT(*)), scaled(SUM(x), COUNT(*)) FROM t WHERE a < 1000 GROUP BY grp

-- case: having-alias-of-call
-- xfail: HAVING_ALIAS
SELECT grp, bucket(COUNT(*), grp, 1) AS k FROM t GROUP BY grp HAVING k > 5

-- case: having-alias-of-plain-call
SELECT grp, bucket(1, grp, 1) AS k FROM t GROUP BY grp HAVING k > 1002

-- case: agg-count-argument-with-column
SELECT grp, tagline(COUNT(*), grp, NULL) FROM t GROUP BY grp

-- case: agg-count-star-only-argument
-- xfail: COUNT_STAR_IN_LOOKUP
-- xfail-paths: table
SELECT grp, bucket(COUNT(*), 'x', 1) AS k FROM t GROUP BY grp

-- case: agg-count-star-no-group
SELECT bucket(COUNT(*), NULL, NULL) FROM t

-- case: having-alias-without-group
SELECT id, scaled(x, n) AS v FROM t HAVING v > 0

-- case: group-with-rollup
SELECT bucket(a, s, x) % 3 AS k, SUM(scaled(x, 2)) FROM t GROUP BY k WITH ROLLUP

-- case: group-by-ordinal
-- ordered
SELECT tagline(1, grp, 1) AS k, COUNT(*) AS c FROM t GROUP BY 1 ORDER BY c DESC, k

-- case: agg-group-concat-ordered-by-call
SELECT grp, GROUP_CONCAT(id ORDER BY bucket(a, s, x), id) FROM t GROUP BY grp


-- == ordering ==
-- case: order-by-text-call
-- ordered
SELECT id FROM t ORDER BY tagline(a, b, c), id

-- case: order-desc-limit
-- ordered
SELECT id FROM t ORDER BY ratio(c, x) DESC, id LIMIT 5

-- case: order-alias-limit-offset
-- ordered
SELECT id, scaled(x, n) AS v FROM t ORDER BY v, id LIMIT 4 OFFSET 3

-- case: order-two-calls-limit-comma
-- ordered
SELECT id FROM t ORDER BY bucket(a, s, x) DESC, tagline(a, b, c), id LIMIT 2, 6

-- case: order-by-ordinal
-- ordered
SELECT id, tagline(a, s, c) FROM t ORDER BY 2, 1

-- case: limit-zero
SELECT id, tagline(a, b, c) FROM t LIMIT 0

-- case: empty-where
SELECT tagline(a, b, c) FROM t WHERE 1 = 0

-- case: found-rows
-- ordered
-- then: SELECT FOUND_ROWS()
SELECT SQL_CALC_FOUND_ROWS id FROM t WHERE bucket(a, s, x) > 0 ORDER BY id LIMIT 2

-- case: for-update
SELECT id, scaled(x, n) FROM t WHERE id < 5 FOR UPDATE


-- == joins ==
-- case: join-inner
SELECT t.id, u.id, tagline(t.a, u.b, u.q) FROM t JOIN u ON u.t_id = t.id

-- case: join-left-null-side
SELECT t.id, u.id, scaled(u.x, t.n), bucket(t.a, u.b, u.x) FROM t LEFT JOIN u ON u.t_id = t.id

-- case: join-call-in-on
SELECT t.id, u.id FROM t JOIN u ON u.t_id = t.id AND bucket(t.a, u.b, u.x) > 0

-- case: join-left-call-in-on
SELECT t.id, u.id FROM t LEFT JOIN u ON u.t_id = t.id AND scaled(u.x, t.a) > 0

-- case: join-right
SELECT t.id, u.id FROM t RIGHT JOIN u ON u.t_id = t.id WHERE ratio(u.q, 2) <> 1

-- case: join-self-arguments-from-both-sides
SELECT p.id, q.id, tagline(p.a, q.b, p.c) FROM t p JOIN t q ON p.id < q.id AND p.grp = q.grp WHERE q.id < 10

-- case: join-comma
SELECT t.id, u.id FROM t, u WHERE u.t_id = t.id AND scaled(t.x, 2) > scaled(u.x, 1)

-- case: join-derived-with-call
SELECT t.id, d.v FROM t JOIN (SELECT t_id, tagline(id, b, q) AS v FROM u) d ON d.t_id = t.id

-- case: join-on-only-calls
SELECT t.id, u.id FROM t JOIN u ON bucket(t.a, t.s, NULL) = bucket(u.t_id, u.b, NULL)


-- == subqueries ==
-- case: subq-in
SELECT id FROM t WHERE id IN (SELECT t_id FROM u WHERE ratio(q, 2) > 0.2)

-- case: subq-exists-correlated
SELECT id FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id AND tagline(t.a, u.b, u.q) LIKE '1%')

-- case: subq-scalar-correlated
SELECT id, (SELECT MAX(scaled(u.x, t.n)) FROM u WHERE u.t_id = t.id) AS m FROM t

-- case: subq-outer-column-as-input
SELECT id, (SELECT tagline(t.a, u.b, 1) FROM u WHERE u.id = 1) FROM t

-- case: subq-scalar-uncorrelated
SELECT id, (SELECT bucket(a, s, x) FROM t WHERE id = 1) AS first FROM t

-- case: subq-compare-to-scalar
SELECT id FROM t WHERE bucket(a, s, x) > (SELECT AVG(bucket(a, s, x)) FROM t)

-- case: subq-in-calls-both-sides
SELECT id FROM t WHERE tagline(1, b, 1) IN (SELECT tagline(1, b, 1) FROM u)

-- case: subq-all-correlated
SELECT id FROM t WHERE scaled(t.x, 2) >= ALL (SELECT scaled(t2.x, 2) FROM t t2 WHERE t2.grp = t.grp AND t2.x IS NOT NULL) AND t.x IS NOT NULL


-- == derived and ctes ==
-- case: derived-group
SELECT v, COUNT(*) FROM (SELECT bucket(a, s, x) % 5 AS v FROM t) d GROUP BY v

-- case: derived-outer-call
SELECT d.id, tagline(d.k, d.t, d.c) FROM (SELECT id, a DIV 3 AS k, CONCAT(b, '*') AS t, c FROM t WHERE grp <> 'c') d

-- case: derived-limited-inner-call
-- ordered
SELECT * FROM (SELECT id, scaled(x, n) AS v FROM t ORDER BY id LIMIT 5) d ORDER BY id

-- case: derived-calls-inside-and-outside
SELECT id, v, bucket(a, SUBSTRING(v, 1, 12), x) FROM (SELECT id, a, x, tagline(a, NULL, NULL) AS v FROM t) d

-- case: derived-unaliased-item
SELECT * FROM (SELECT id, tagline(a, b, c) FROM t) d

-- case: cte-plain
WITH p AS (SELECT id, a, b, c FROM t WHERE grp = 'a') SELECT id, tagline(a, b, c) FROM p

-- case: cte-call-inside
WITH s AS (SELECT id, scaled(x, n) AS v FROM t) SELECT v > 0, COUNT(*) FROM s GROUP BY v > 0

-- case: cte-recursive-outer-call
WITH RECURSIVE r (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < 6) SELECT k, tagline(k, CONCAT('r', k), k / 3), scaled(k * 1.25, k) FROM r

-- case: cte-read-in-union-branches
WITH p AS (SELECT id, a, b, c FROM t WHERE grp = 'b') SELECT tagline(a, b, c) FROM p UNION ALL SELECT tagline(a, NULL, c) FROM p

-- case: cte-chained
WITH p AS (SELECT * FROM t), q AS (SELECT * FROM p WHERE id > 8) SELECT id, bucket(a, s, x) FROM q


-- == set operations ==
-- case: union-distinct
SELECT tagline(a, b, 1) FROM t UNION SELECT tagline(t_id, b, 1) FROM u

-- case: union-all-mixed-types
SELECT id, scaled(x, n) AS v FROM t UNION ALL SELECT id, bucket(t_id, b, x) FROM u

-- case: union-order-limit
-- ordered
SELECT id FROM t WHERE bucket(a, s, x) > 0 UNION SELECT id FROM u WHERE ratio(q, 1) < 0 ORDER BY id LIMIT 6

-- case: union-row-and-constant
SELECT tagline(a, b, c) FROM t WHERE id = 1 UNION ALL SELECT tagline(1, 'k', 1)

-- case: union-constants
SELECT scaled(1, 2) UNION SELECT scaled(3, 4)

-- case: intersect
SELECT id FROM t INTERSECT SELECT t_id FROM u WHERE scaled(x, 1) IS NOT NULL

-- case: except
SELECT id FROM t WHERE bucket(a, s, x) > 0 EXCEPT SELECT t_id FROM u


-- == windows and misc ==
-- case: window-partition-by-call
SELECT id, ROW_NUMBER() OVER (PARTITION BY bucket(a, s, x) % 2 ORDER BY id) FROM t

-- case: window-running-sum
SELECT id, SUM(scaled(x, n)) OVER (ORDER BY id) FROM t

-- case: window-lag
SELECT id, LAG(tagline(a, b, c)) OVER (ORDER BY id) FROM t

-- case: window-function-argument
-- xfail: WINDOW_IN_LOOKUP
-- xfail-paths: table
SELECT id, tagline(ROW_NUMBER() OVER (ORDER BY id), NULL, NULL) FROM t

-- case: window-function-argument-without-columns
-- xfail: WINDOW_IN_LOOKUP
-- xfail-paths: table
SELECT id, tagline(COUNT(*) OVER (), NULL, NULL) FROM t

-- case: window-rank-by-call
SELECT id, RANK() OVER (ORDER BY ratio(c, x) DESC) AS r FROM t

-- case: select-into-variable
-- then: SELECT @tg
SELECT tagline(a, b, c) INTO @tg FROM t WHERE id = 3

-- case: set-variable-from-subquery
-- then: SELECT @sv
SET @sv = (SELECT scaled(x, n) FROM t WHERE id = 4)

-- case: table-path-unforced
SELECT id, tagline(a, b, 0.5), bucket(a, b, id) FROM many


-- == qualified ==
-- case: qual-select
SELECT id, {db}.tagline(a, b, c) AS v FROM t

-- case: qual-unaliased-item
SELECT id, {db}.scaled(x, n) FROM t

-- case: qual-backticked
SELECT id, `{db}`.`bucket`(a, s, x) FROM `{db}`.t

-- case: qual-equals-unqualified
SELECT id, {db}.tagline(a, b, c) = tagline(a, b, c) AS same FROM t

-- case: qual-where
SELECT id FROM t WHERE {db}.bucket(a, s, x) > 0

-- case: qual-group-order
-- ordered
SELECT {db}.tagline(1, grp, 1) AS k, SUM({db}.scaled(x, 2)) FROM t GROUP BY k ORDER BY k

-- case: qual-constant
SELECT {db}.ratio(1, 8), {db}.tagline(NULL, 'q', NULL)

-- case: qual-spaced-dot
SELECT id, {db} . tagline(a, b, c) AS v FROM t


-- == other database ==
-- case: other-select
-- where: other
SELECT id, {db}.tagline(a, b, c) AS v FROM {db}.t

-- case: other-unaliased-item
-- where: other
SELECT id, {db}.ratio(c, x) FROM {db}.t

-- case: other-all-four
-- where: other
SELECT id, {db}.tagline(a, b, c), {db}.scaled(x, n), {db}.ratio(c, x), {db}.bucket(a, s, x) FROM {db}.t

-- case: other-local-table
-- where: other
SELECT id, {db}.bucket(k, s, NULL), {db}.tagline(k, s, id) FROM o

-- case: other-join-local-and-remote
-- where: other
SELECT o.id, t.id, {db}.tagline(o.k, t.b, t.c) FROM o JOIN {db}.t t ON t.a = o.k

-- case: other-constant
-- where: other
SELECT {db}.scaled(1.5, 3), {db}.bucket(1, 'x', 2)

-- case: other-where-group
-- where: other
SELECT grp, COUNT(*) FROM {db}.t WHERE {db}.scaled(x, n) > 0 GROUP BY grp

-- case: other-subquery
-- where: other
SELECT id FROM o WHERE {db}.bucket(k, s, 0) IN (SELECT {db}.bucket(a, b, 0) FROM {db}.t)

-- Unqualified, the name means alias_other.tagline: an error on both sides.
-- case: other-unqualified-is-an-error
-- where: other
SELECT tagline(1, 'x', 1)

-- case: other-use-then-unqualified
-- where: other
-- setup: USE {db}
-- cleanup: USE alias_other
SELECT id, tagline(a, b, c) FROM t


-- == conversion probes ==
-- case: probe-string-into-int
-- xfail: STRING_INTO_INT
SELECT tagline('3.7', 'x', 1)

-- case: probe-int-out-of-range
-- xfail: INT_RANGE
SELECT tagline(3000000000, 'x', 1)

-- case: probe-int-out-of-range-row
-- xfail: INT_RANGE
SELECT tagline(a * 2, 'x', 1) FROM t WHERE id = 4

-- case: probe-int-out-of-range-lax
-- xfail: INT_RANGE_LAX
-- setup: SET SESSION sql_mode = ''
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT tagline(3000000000, 'x', 1)

-- case: probe-varchar-too-long
-- xfail: VARCHAR_TOO_LONG
SELECT tagline(1, REPEAT('x', 21), 1)

-- case: probe-bad-integer-text
-- xfail: BAD_INTEGER_TEXT
SELECT tagline('abc', 'x', 1)

-- case: probe-decimal-out-of-range
-- xfail: DECIMAL_RANGE
SELECT scaled(123456789012, 1)

-- case: probe-bigint-wraps
-- xfail: BIGINT_WRAPS
SELECT scaled(1, 9223372036854775808)

-- case: probe-infinite-answer
SELECT ratio(1e300, 1e-300)

-- case: probe-trailing-spaces-fit
SELECT tagline(1, CONCAT(REPEAT('x', 20), '   '), 1)

-- case: probe-decimal-rounding
SELECT scaled(1.005e0, 1), scaled('2.675', 1)

-- case: probe-double-into-int-rounding
SELECT tagline(2.5e0, 'x', 1), tagline(-3.5, 'x', 1)


-- == sql modes ==
-- case: mode-no-backslash-escapes-row
-- setup: SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, tagline(a, 'x\', c) FROM t

-- case: mode-no-backslash-escapes-constant
-- setup: SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT tagline(1, 'x\''y', 1)

-- case: mode-no-backslash-escapes-no-backslash
-- setup: SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, tagline(a, 'it''s', c) FROM t

-- case: mode-pipes-as-concat
-- setup: SET SESSION sql_mode = 'PIPES_AS_CONCAT'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, tagline(a, b || '!', c), scaled(x || '1', n) FROM t

-- case: mode-pipes-as-concat-constant
-- setup: SET SESSION sql_mode = 'PIPES_AS_CONCAT'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT tagline(1, 'a' || 'b', 1)

-- case: mode-pipes-as-or
-- setup: SET SESSION sql_mode = ''
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, tagline(a, b || c, 1) FROM t

-- case: mode-ansi-quotes-column-argument
-- setup: SET SESSION sql_mode = 'ANSI_QUOTES'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, tagline(a, "b", c) FROM t

-- case: mode-ansi-quotes-only-column-is-quoted
-- setup: SET SESSION sql_mode = 'ANSI_QUOTES'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT tagline(1, "b", 1) FROM t WHERE id = 1

-- case: mode-ansi-quotes-quoted-name
-- xfail: ANSI_QUOTED_NAME
-- setup: SET SESSION sql_mode = 'ANSI_QUOTES'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, "tagline"(a, b, c) FROM t

-- case: mode-ignore-space
-- setup: SET SESSION sql_mode = 'IGNORE_SPACE'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, tagline (a, b, c) FROM t

-- case: mode-high-not-precedence
-- setup: SET SESSION sql_mode = 'HIGH_NOT_PRECEDENCE'
-- cleanup: SET SESSION sql_mode = DEFAULT
SELECT id, bucket(NOT a BETWEEN -5 AND 5, s, x) FROM t
