-- The seed talk's sentiment queries (Aurora ML, slides 12-13), unchanged.
-- After `./dev demo`:  mariadb -h 127.0.0.1 -P 6033 -u demo -pdemo demo < examples/queries/sentiment.sql

SELECT comment_text,
       aws_comprehend_detect_sentiment(comment_text, 'en') AS sentiment,
       aws_comprehend_detect_sentiment_confidence(comment_text, 'en') AS confidence
FROM comments;

SELECT AVG(CASE aws_comprehend_detect_sentiment(comment_text, 'en')
             WHEN 'POSITIVE' THEN 1.0
             WHEN 'NEGATIVE' THEN -1.0
             ELSE 0.0 END) AS avg_sentiment,
       COUNT(*) AS total
FROM comments
WHERE aws_comprehend_detect_sentiment_confidence(comment_text, 'en') >= 0.80;

-- What the proxy did: logical calls, real backend requests, answers from de-duplication.
SHOW STATUS LIKE 'Aurora_ml%';
