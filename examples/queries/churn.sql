-- The seed talk's customer-churn statements (Aurora ML, slides 16-20), unchanged but for
-- one character: the slide closes the endpoint name with a typographic quote
-- ('tuning-job-123’), which no MySQL accepts; here it is a plain ' .
-- After `./dev demo` (which loads the customers table and routes 'tuning-job-123' to the
-- example's model, examples/churn/model.py):
--   mariadb -h 127.0.0.1 -P 6033 -u demo -pdemo demo < examples/queries/churn.sql
-- Not in the seed: the DROP FUNCTION IF EXISTS below, so the file can be run again.
-- customers_churn is kept between runs (CREATE TABLE IF NOT EXISTS: the slide's
-- "caching"); drop it to score the customers again.

DROP FUNCTION IF EXISTS will_churn;

CREATE FUNCTION will_churn (
state varchar(2048),
acc_length bigint(20),
area_code bigint(20), phone varchar(2048),
int_plan varchar(2048),
vmail_plan varchar(2048), vmail_msg bigint(20),
day_mins double, day_calls bigint(20), day_charge double,
eve_mins double, eve_calls bigint(20), eve_charge double,
night_mins double, night_calls bigint(20), night_charge double,
int_mins double, int_calls bigint(20), int_charge double,
cust_service_calls bigint(20))
RETURNS varchar(2048) CHARSET utf8mb4
alias aws_sagemaker_invoke_endpoint
endpoint name 'tuning-job-123';

CREATE TABLE IF NOT EXISTS customers_churn AS
SELECT *, will_churn(state, acc_length, area_code, phone, int_plan,
vmail_plan, vmail_msg, day_mins, day_calls, day_charge,
eve_mins, eve_calls, eve_charge, night_mins, night_calls, night_charge,
int_mins, int_calls, int_charge, cust_service_calls) will_churn
FROM customers;

SELECT * FROM customers_churn LIMIT 7;

SELECT will_churn, COUNT(*) FROM customers_churn GROUP BY will_churn;

SELECT will_churn,
AVG(acc_length),
AVG(cust_service_calls),
COUNT(*)
FROM customers_churn
GROUP BY will_churn;
