"""The customer-churn example (issue 4): a synthetic data set shaped like the Aurora labs'
``customers`` table, a small logistic-regression model trained on it, and a
SageMaker-compatible HTTP endpoint serving that model.
"""
