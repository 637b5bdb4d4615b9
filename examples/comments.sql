-- The seed talk's sentiment workload (Aurora ML, slides 11-13).
-- Loaded by `mlproxy demo` into the `demo` database.
CREATE TABLE IF NOT EXISTS comments (
    comment_id INT AUTO_INCREMENT PRIMARY KEY,
    comment_text VARCHAR(255) NOT NULL
);

INSERT INTO comments (comment_text) VALUES
    ('This is very useful, thank you for writing it!'),
    ('Awesome, I was waiting for this feature.'),
    ('An interesting write up, please add more details.'),
    ('I don’t like how this was implemented.'),
    ('Horrible writing, I have read better books.');
